//! The one place a service is read from the file: `"turn"` (built-in) or
//! `{ kind = "turn", implementation = "coturn" }` (`"built-in"` is the default).

use toml::{Spanned, Value};

use super::{Implementation, Service, ServiceKind};
use crate::diag::Reporter;

/// Reads one entry of `services = [...]` of server `server`; mistakes are reported at
/// the entry and give `None`.
pub(crate) fn parse_service(rep: &mut Reporter, server: &str, entry: &Spanned<Value>) -> Option<Service> {
    let span = entry.span();
    let kind_of = |rep: &mut Reporter, name: &str| {
        let kind = ServiceKind::from_name(name);
        if kind.is_none() {
            let known: Vec<&str> = ServiceKind::ALL.iter().map(|k| k.name()).collect();
            rep.error(
                span.clone(),
                format!("server `{server}` has unknown service `{name}`"),
                Some(format!("known services: {}", known.join(", "))),
            );
        }
        kind
    };
    match entry.get_ref() {
        Value::String(name) => kind_of(rep, name).map(Service::built_in),
        Value::Table(t) => {
            if let Some(bad) = t.keys().find(|k| *k != "kind" && *k != "implementation") {
                rep.error(
                    span,
                    format!("server `{server}`: unknown service field `{bad}`"),
                    Some("a service table takes `kind` and `implementation`".into()),
                );
                return None;
            }
            let Some(Value::String(kind)) = t.get("kind") else {
                rep.error(span, format!("server `{server}`: service table without `kind`"), Some(kind_hint()));
                return None;
            };
            let kind = kind_of(rep, kind)?;
            let implementation = match t.get("implementation") {
                None => Implementation::default(),
                Some(Value::String(name)) => match Implementation::from_name(name) {
                    Some(i) => i,
                    None => {
                        let known: Vec<&str> = Implementation::ALL.iter().map(|i| i.name()).collect();
                        rep.error(
                            span,
                            format!("server `{server}` has unknown implementation `{name}` for `{kind}`"),
                            Some(format!("known implementations: {}", known.join(", "))),
                        );
                        return None;
                    }
                },
                Some(_) => {
                    rep.error(span, format!("server `{server}`: `implementation` must be a string"), None);
                    return None;
                }
            };
            if !implementation.provides(kind) {
                rep.error(
                    span,
                    format!("server `{server}`: {} has no `{kind}` service", implementation.name()),
                    Some(format!("{} provides stun and turn", implementation.name())),
                );
                return None;
            }
            Some(Service { kind, implementation })
        }
        _ => {
            rep.error(span, format!("server `{server}`: a service is a name or a table"), Some(kind_hint()));
            None
        }
    }
}

fn kind_hint() -> String {
    "write \"turn\" or { kind = \"turn\", implementation = \"built-in\" }".into()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        services: Vec<Spanned<Value>>,
    }

    /// Parses `services = <list>`; returns the services and "line:col message" errors.
    fn parse(list: &str) -> (Vec<Service>, Vec<String>) {
        let src = format!("services = {list}\n");
        let doc: Doc = toml::from_str(&src).unwrap();
        let mut rep = Reporter::new("t.toml", &src);
        let out = doc.services.iter().filter_map(|e| parse_service(&mut rep, "s", e)).collect();
        let errors = match rep.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.diagnostics.iter().map(|d| format!("{}:{} {}", d.line, d.col, d.message)).collect(),
        };
        (out, errors)
    }

    #[test]
    fn names_and_tables_give_the_same_service() {
        let (s, e) = parse(r#"["stun", { kind = "turn", implementation = "built-in" }, { kind = "echo" }]"#);
        assert_eq!(e, Vec::<String>::new());
        let want: Vec<Service> =
            [ServiceKind::Stun, ServiceKind::Turn, ServiceKind::Echo].into_iter().map(Service::built_in).collect();
        assert_eq!(s, want);
    }

    #[test]
    fn coturn_is_an_implementation_of_stun_and_turn() {
        let (s, e) =
            parse(r#"[{ kind = "turn", implementation = "coturn" }, { kind = "stun", implementation = "coturn" }]"#);
        assert_eq!(e, Vec::<String>::new());
        let coturn = |kind| Service { kind, implementation: Implementation::Coturn };
        assert_eq!(s, vec![coturn(ServiceKind::Turn), coturn(ServiceKind::Stun)]);
        assert_eq!(s[0].to_string(), "turn (coturn)");
    }

    #[test]
    fn unknown_kind_is_located_at_its_entry() {
        let (s, e) = parse(r#"["stun", "dhcp"]"#);
        assert_eq!(s, vec![Service::built_in(ServiceKind::Stun)]);
        assert_eq!(e, vec!["1:21 server `s` has unknown service `dhcp`".to_string()]);
        let (_, e) = parse(r#"[{ kind = "ntp" }]"#);
        assert_eq!(e, vec!["1:13 server `s` has unknown service `ntp`".to_string()]);
    }

    #[test]
    fn unknown_implementation_and_bad_tables_are_located() {
        let (s, e) = parse(r#"["echo", { kind = "turn", implementation = "eturnal" }]"#);
        assert_eq!(s.len(), 1);
        assert_eq!(e, vec!["1:21 server `s` has unknown implementation `eturnal` for `turn`".to_string()]);
        let (_, e) = parse(r#"[{ kind = "echo", implementation = "coturn" }]"#);
        assert_eq!(e, vec!["1:13 server `s`: coturn has no `echo` service".to_string()]);
        let (_, e) = parse(r#"[{ implementation = "built-in" }]"#);
        assert_eq!(e, vec!["1:13 server `s`: service table without `kind`".to_string()]);
        let (_, e) = parse(r#"[{ kind = "turn", port = 1 }]"#);
        assert_eq!(e, vec!["1:13 server `s`: unknown service field `port`".to_string()]);
        let (_, e) = parse("[3]");
        assert_eq!(e, vec!["1:13 server `s`: a service is a name or a table".to_string()]);
    }
}
