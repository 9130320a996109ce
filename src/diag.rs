//! Mistakes in icelab files, located by file:line:col with a hint: the diagnostics
//! every layer of the file (lab, scenario, events) reports through one [`Reporter`].

use std::fmt;
use std::ops::Range;

/// One mistake in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// File name as given by the user.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The offending source line, for display.
    #[serde(skip)]
    pub source_line: String,
}

/// Every mistake found in one file (at least one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileError {
    /// The mistakes, in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl std::error::Error for FileError {}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}:{}:{}: error: {}", self.file, self.line, self.col, self.message)?;
        let gutter = format!("{}", self.line);
        writeln!(f, "{} | {}", gutter, self.source_line)?;
        write!(f, "{} | {}^", " ".repeat(gutter.len()), " ".repeat(self.col.saturating_sub(1)))?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics against one source text.
pub(crate) struct Reporter<'a> {
    file: &'a str,
    src: &'a str,
    found: Vec<(usize, Diagnostic)>,
}

impl<'a> Reporter<'a> {
    /// A reporter for `src`, read from `file`.
    pub(crate) fn new(file: &'a str, src: &'a str) -> Self {
        Reporter { file, src, found: Vec::new() }
    }

    /// Records a mistake at byte range `span`.
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>, hint: Option<String>) {
        let d = locate(self.file, self.src, span.start, message.into(), hint);
        self.found.push((span.start, d));
    }

    /// True when nothing was recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// Ends collection: `Ok(())` if nothing is wrong.
    pub(crate) fn finish(mut self) -> Result<(), FileError> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort_by_key(|(offset, _)| *offset);
        Err(FileError { diagnostics: self.found.into_iter().map(|(_, d)| d).collect() })
    }
}

/// Turns a byte offset into a located diagnostic.
pub(crate) fn locate(file: &str, src: &str, offset: usize, message: String, hint: Option<String>) -> Diagnostic {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = src[line_start..offset].chars().count() + 1;
    let source_line = src[line_start..].lines().next().unwrap_or("").to_string();
    Diagnostic { file: file.to_string(), line, col, message, hint, source_line }
}
