//! The peer's output: events as JSON lines, timestamped by the peer's clock.

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::events::Clock;
use super::protocol::{PeerEvent, SignalMsg};

/// Writes events as JSON lines.
pub(crate) struct Out<W> {
    pub(crate) w: W,
    pub(crate) clock: Clock,
}

impl<W: AsyncWrite + Unpin> Out<W> {
    pub(crate) async fn emit(&mut self, ev: PeerEvent) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&ev)?;
        line.push(b'\n');
        self.w.write_all(&line).await?;
        self.w.flush().await?;
        Ok(())
    }
    pub(crate) async fn signal(&mut self, signal: SignalMsg) -> anyhow::Result<()> {
        let t_ms = self.clock.ms();
        self.emit(PeerEvent::Signal { t_ms, signal }).await
    }
}
