//! Where events go ([`Target`]) and how they get there ([`Emission`]): POSTed as JSON to an
//! OpenLineage HTTP endpoint, or appended to a file, one per line, in the background.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use openlineage_client::RunEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use url::Url;

use crate::OpenLineageError;

/// The environment variable holding the API key sent to an HTTP endpoint, as
/// `Authorization: Bearer <key>`. Unset or empty: no `Authorization` header.
pub const API_KEY_ENV: &str = "OPENLINEAGE_API_KEY";

/// The path of the lineage API under an endpoint's base URL.
const LINEAGE_PATH: &str = "/api/v1/lineage";
/// How long connecting to an endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where events are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The lineage API of an HTTP endpoint: the base URL given, with `/api/v1/lineage`.
    Http(Url),
    /// A file that each event is appended to, as one line of JSON.
    File(PathBuf),
}

impl Target {
    /// Parses `http(s)://HOST[:PORT][/PREFIX]` (the endpoint's base URL; `/api/v1/lineage` is
    /// appended unless it is there) or `file:PATH`.
    pub fn parse(text: &str) -> Result<Self, OpenLineageError> {
        let refuse = |reason: String| OpenLineageError::Target { target: text.to_owned(), reason };
        if let Some(path) = text.strip_prefix("file:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(refuse("`file:` needs a path, like file:events.jsonl".to_owned()));
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        let hint = "give the base URL of an OpenLineage endpoint, like http://localhost:5000, or file:PATH";
        let mut url = Url::parse(text).map_err(|e| refuse(format!("{e}; {hint}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(refuse(format!("only http://, https:// and file: targets are known; {hint}")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(refuse(format!("a query or fragment has no place in it; {hint}")));
        }
        let base = url.path().trim_end_matches('/').to_owned();
        if !base.ends_with(LINEAGE_PATH) {
            url.set_path(&format!("{base}{LINEAGE_PATH}"));
        }
        Ok(Self::Http(url))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(url) => write!(f, "{url}"),
            Self::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// What an [`Emission`] delivered.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Events delivered.
    pub sent: usize,
    /// Events not delivered: the one that failed, and every one after it.
    pub dropped: usize,
    /// Why delivery stopped, if it did.
    pub error: Option<OpenLineageError>,
}

/// Events on their way to a [`Target`]: sent in order by a task of the current Tokio
/// runtime, so that emitting never waits. The first failure stops the sending (an endpoint
/// that is down would otherwise cost a timeout per event); the events after it are dropped.
#[derive(Debug)]
pub struct Emission {
    queue: mpsc::UnboundedSender<RunEvent>,
    task: JoinHandle<Delivery>,
}

impl Emission {
    /// Starts sending to `target`, with the API key of [`API_KEY_ENV`] for HTTP. Must be
    /// called within a Tokio runtime.
    pub fn start(target: Target) -> Result<Self, OpenLineageError> {
        let sink = Sink::new(target)?;
        let (queue, mut events) = mpsc::unbounded_channel::<RunEvent>();
        let task = tokio::spawn(async move {
            let mut delivery = Delivery::default();
            while let Some(event) = events.recv().await {
                if delivery.error.is_some() {
                    delivery.dropped += 1;
                    continue;
                }
                match sink.send(&event).await {
                    Ok(()) => delivery.sent += 1,
                    Err(error) => {
                        delivery.error = Some(error);
                        delivery.dropped += 1;
                    }
                }
            }
            delivery
        });
        Ok(Self { queue, task })
    }

    /// Queues `event`. Never waits.
    pub fn emit(&self, event: RunEvent) {
        // The task ends only once the queue is closed, in `finish`.
        let _ = self.queue.send(event);
    }

    /// Waits up to `wait` for the queued events to be sent, and says what was delivered.
    pub async fn finish(self, wait: Duration) -> Delivery {
        let Self { queue, mut task } = self;
        drop(queue);
        match tokio::time::timeout(wait, &mut task).await {
            Ok(Ok(delivery)) => delivery,
            Ok(Err(join)) => {
                Delivery { error: Some(unfinished(format!("the sending task failed: {join}"))), ..Delivery::default() }
            }
            Err(_) => {
                task.abort();
                Delivery {
                    error: Some(unfinished(format!("events still unsent after {} s", wait.as_secs_f64()))),
                    ..Delivery::default()
                }
            }
        }
    }
}

fn unfinished(reason: String) -> OpenLineageError {
    OpenLineageError::Http { url: "the OpenLineage target".to_owned(), reason }
}

/// A target, ready to take events.
enum Sink {
    Http { client: reqwest::Client, url: Url, api_key: Option<String> },
    File(PathBuf),
}

impl Sink {
    fn new(target: Target) -> Result<Self, OpenLineageError> {
        Ok(match target {
            Target::Http(url) => {
                let client = reqwest::Client::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .timeout(REQUEST_TIMEOUT)
                    .build()
                    .map_err(|e| OpenLineageError::Http { url: url.to_string(), reason: chain(&e) })?;
                let api_key = std::env::var(API_KEY_ENV).ok().filter(|key| !key.is_empty());
                Self::Http { client, url, api_key }
            }
            Target::File(path) => Self::File(path),
        })
    }

    async fn send(&self, event: &RunEvent) -> Result<(), OpenLineageError> {
        let mut body = serde_json::to_vec(event)?;
        match self {
            Self::Http { client, url, api_key } => {
                let failed = |reason: String| OpenLineageError::Http { url: url.to_string(), reason };
                let mut request =
                    client.post(url.clone()).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
                if let Some(key) = api_key {
                    request = request.bearer_auth(key);
                }
                let response = request.send().await.map_err(|e| failed(chain(&e)))?;
                let status = response.status();
                if status.is_success() {
                    return Ok(());
                }
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(200).collect();
                Err(failed(format!("the endpoint answered {status}: {}", text.trim())))
            }
            Self::File(path) => {
                body.push(b'\n');
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .and_then(|mut file| file.write_all(&body))
                    .map_err(|source| OpenLineageError::File { path: path.clone(), source })
            }
        }
    }
}

/// An error and its causes, as one line: reqwest's own message names only the request.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let shown = inner.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let http = |text: &str| match Target::parse(text) {
            Ok(Target::Http(url)) => url.to_string(),
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(http("http://localhost:5000"), "http://localhost:5000/api/v1/lineage");
        assert_eq!(http("https://marquez.example/prefix/"), "https://marquez.example/prefix/api/v1/lineage");
        assert_eq!(http("http://127.0.0.1:5000/api/v1/lineage"), "http://127.0.0.1:5000/api/v1/lineage");
        assert_eq!(Target::parse("file:events.jsonl").ok(), Some(Target::File(PathBuf::from("events.jsonl"))));
        assert_eq!(Target::parse("file:///tmp/e.jsonl").ok(), Some(Target::File(PathBuf::from("/tmp/e.jsonl"))));
        for bad in ["", "file:", "marquez:5000", "ftp://host/x", "localhost", "http://h:5000/?x=1"] {
            let error = Target::parse(bad).expect_err(bad).to_string();
            assert!(error.contains(&format!("`{bad}`")), "{error}");
        }
    }
}
