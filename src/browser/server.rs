//! The page's side of the adapter: an HTTP server on loopback inside the namespace.
//!
//! `GET /` and `/page.js` serve the page, `GET /config` its configuration, `GET /signals`
//! waits (up to [`POLL`]) for the other side's signaling, `POST /event` takes a JSON array
//! of the page's reports.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use tiny_http::{Header, Method, Response, Server};

use super::page;

/// How long a `/signals` request waits for a message before answering `[]`.
pub const POLL: Duration = Duration::from_millis(500);

/// What the server tells the adapter.
pub enum FromPage {
    /// The page fetched its configuration (it is loaded and running).
    Loaded,
    /// One report, as the page wrote it (an object with `event` and `t_wall`).
    Event(serde_json::Value),
}

/// Signaling waiting for the page, filled from stdin.
#[derive(Default)]
pub struct Inbox {
    queue: Mutex<VecDeque<serde_json::Value>>,
    ready: Condvar,
}

impl Inbox {
    /// Queues one message for the page.
    pub fn push(&self, msg: serde_json::Value) {
        self.queue.lock().unwrap().push_back(msg);
        self.ready.notify_all();
    }

    /// Everything queued, waiting up to `wait` for the first message.
    fn take(&self, wait: Duration) -> Vec<serde_json::Value> {
        let until = Instant::now() + wait;
        let mut q = self.queue.lock().unwrap();
        while q.is_empty() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            q = self.ready.wait_timeout(q, left).unwrap().0;
        }
        q.drain(..).collect()
    }
}

/// Binds a free loopback port; returns the page's URL and the server.
pub fn bind() -> anyhow::Result<(String, Server)> {
    let server = Server::http("127.0.0.1:0").map_err(|e| anyhow::anyhow!("{e}")).context("binding the page server")?;
    let port = server.server_addr().to_ip().context("page server address")?.port();
    Ok((format!("http://127.0.0.1:{port}/"), server))
}

fn header(v: &str) -> Header {
    Header::from_bytes("Content-Type", v).expect("static header")
}

/// Serves requests until the process exits; each on its own thread so a long poll does not
/// hold up the page's event posts.
pub fn serve(server: Server, config: serde_json::Value, inbox: Arc<Inbox>, tx: mpsc::Sender<FromPage>) {
    let server = Arc::new(server);
    for mut req in server.incoming_requests() {
        let (config, inbox, tx) = (config.clone(), inbox.clone(), tx.clone());
        std::thread::spawn(move || {
            let path = req.url().split('?').next().unwrap_or("").to_string();
            let resp = match (req.method(), path.as_str()) {
                (Method::Get, "/") => Response::from_string(page::HTML).with_header(header("text/html")),
                (Method::Get, "/page.js") => Response::from_string(page::SCRIPT).with_header(header("text/javascript")),
                (Method::Get, "/config") => {
                    let _ = tx.send(FromPage::Loaded);
                    Response::from_string(serde_json::json!({ "config": config }).to_string())
                        .with_header(header("application/json"))
                }
                (Method::Get, "/signals") => {
                    let msgs = serde_json::Value::Array(inbox.take(POLL));
                    Response::from_string(msgs.to_string()).with_header(header("application/json"))
                }
                (Method::Post, "/event") => {
                    let mut body = String::new();
                    let _ = req.as_reader().read_to_string(&mut body);
                    match serde_json::from_str::<serde_json::Value>(&body) {
                        Ok(serde_json::Value::Array(evs)) => {
                            for ev in evs {
                                let _ = tx.send(FromPage::Event(ev));
                            }
                            Response::from_string("ok")
                        }
                        _ => Response::from_string("bad event").with_status_code(400),
                    }
                }
                _ => Response::from_string("not found").with_status_code(404),
            };
            let _ = req.respond(resp);
        });
    }
}
