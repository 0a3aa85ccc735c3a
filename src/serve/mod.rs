//! `tarjama serve`: translation (and summaries) over HTTP, with LibreTranslate's API.
//!
//! The server starts listening at once and loads the models on their worker threads
//! ([`batcher`]); `/health` answers 503 until they are loaded. Handlers parse and check a
//! request ([`api`]), take a place in the bounded queue (429 when none is left), hand the work
//! to the worker and wait for its answer at most `--timeout`. SIGTERM or Ctrl-C stops accepting
//! connections, lets the requests in flight finish, and returns; a second one exits at once.

mod api;
mod batcher;
mod detect;
mod handlers;
mod html;
mod metrics;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Semaphore};

use api::ApiError;
use batcher::{SummarizeJob, TranslateJob};
use metrics::Metrics;

use crate::pipeline::Engine;
use crate::{Error, Result};

/// The parsers of request bodies, for the property test that feeds them random bodies.
#[doc(hidden)]
pub mod parsing {
    pub use super::api::{summarize_request, translate_request, ApiError, Fields};
}

/// How the server runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// The keys a request must carry one of, when set.
    pub api_keys: Option<HashSet<String>>,
    /// Requests admitted at once per model, waiting or in progress.
    pub max_queue: usize,
    /// Characters of text a request may send.
    pub max_chars: usize,
    pub timeout: Duration,
    /// Report each batch on stderr.
    pub verbose: bool,
    /// Check summaries against their articles (see `crate::faithful`).
    pub check_summaries: bool,
}

impl Config {
    /// Bytes a body may have: `max_chars` characters written in the longest way a client may
    /// write them (a character outside the BMP is 12 bytes as `%F0%9F%98%80` or a JSON
    /// surrogate pair), and room for the other fields.
    fn body_limit(&self) -> usize {
        self.max_chars.saturating_mul(12).saturating_add(64 * 1024)
    }
}

/// Loads a model, on its worker's thread.
pub type Loader = Box<dyn FnOnce() -> Result<Engine> + Send>;

/// Reads an API keys file: one key a line; blank lines and `#` comments are skipped.
pub fn read_api_keys(path: &std::path::Path) -> Result<HashSet<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::usage(format!(
            "cannot read the API keys file {}: {e}",
            path.display()
        ))
    })?;
    let keys: HashSet<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(Error::usage(format!(
            "the API keys file {} holds no key: write one key a line, or leave out --api-keys",
            path.display()
        )));
    }
    Ok(keys)
}

/// A worker's queue: the channel to its thread and the places in it.
struct Queue<J> {
    sender: Mutex<Option<mpsc::Sender<J>>>,
    places: Arc<Semaphore>,
    capacity: usize,
}

impl<J> Queue<J> {
    fn new(capacity: usize) -> (Queue<J>, mpsc::Receiver<J>) {
        let (sender, receiver) = mpsc::channel();
        let queue = Queue {
            sender: Mutex::new(Some(sender)),
            places: Arc::new(Semaphore::new(capacity)),
            capacity,
        };
        (queue, receiver)
    }

    fn depth(&self) -> usize {
        self.capacity - self.places.available_permits()
    }

    /// A place in the queue, or 429 with `Retry-After`.
    fn place(&self) -> std::result::Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        self.places.clone().try_acquire_owned().map_err(|_| ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "Slowdown: the server is busy ({} requests waiting or in progress); retry after 1 second",
                    self.capacity
                ),
            )
        })
    }

    /// Sends `job` to the worker and waits for its answer at most `timeout`; `arriving` counts
    /// the request as on its way until it is sent.
    async fn run<T>(
        &self,
        job: J,
        answer: oneshot::Receiver<batcher::Reply<T>>,
        timeout: Duration,
        arriving: Option<batcher::Arriving>,
    ) -> std::result::Result<Vec<T>, ApiError> {
        let sent = match &*self.sender.lock().expect("never poisoned") {
            Some(sender) => sender.send(job).is_ok(),
            None => false,
        };
        drop(arriving);
        if !sent {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "The server is shutting down",
            ));
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(results))) => Ok(results),
            Ok(Ok(Err(why))) => Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                why,
            )),
            Ok(Err(_)) => Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "The model's worker stopped (see the server's log)",
            )),
            Err(_) => Err(ApiError::new(
                axum::http::StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "Timed out after {} s: the server is busy or the text is long; retry, or send less text",
                    timeout.as_secs_f64()
                ),
            )),
        }
    }

    fn close(&self) {
        self.sender.lock().expect("never poisoned").take();
    }
}

/// What the handlers share.
struct State {
    config: Config,
    /// Translation requests being read, which the worker waits for a moment to batch together.
    arriving: Arc<AtomicUsize>,
    ready: AtomicBool,
    translate: Queue<TranslateJob>,
    summarize: Option<Queue<SummarizeJob>>,
    metrics: Arc<Metrics>,
}

impl State {
    fn queue_depth(&self) -> usize {
        self.translate.depth() + self.summarize.as_ref().map_or(0, Queue::depth)
    }
}

/// Starts a model's worker thread: it loads the model, says so on `loaded`, then serves `jobs`.
fn start_worker<J: Send + 'static>(
    name: &str,
    load: Loader,
    jobs: mpsc::Receiver<J>,
    loaded: mpsc::Sender<Result<String>>,
    work: fn(Engine, mpsc::Receiver<J>, batcher::Shared),
    shared: batcher::Shared,
) -> Result<()> {
    std::thread::Builder::new()
        .name(format!("tarjama-{name}"))
        .spawn(move || match load() {
            Ok(engine) => {
                let _ = loaded.send(Ok(engine.describe()));
                work(engine, jobs, shared);
            }
            Err(e) => {
                let _ = loaded.send(Err(e));
            }
        })
        .map(|_| ())
        .map_err(|e| Error::model(format!("cannot start a worker thread: {e}")))
}

/// Serves until SIGTERM or Ctrl-C, then drains and returns `Ok`; a model that fails to load
/// or an address that cannot be bound is an error.
pub fn run(config: Config, translator: Loader, summarizer: Option<Loader>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("tarjama-http")
        .build()
        .map_err(|e| Error::model(format!("cannot start the HTTP runtime: {e}")))?;
    let result = runtime.block_on(serve(config, translator, summarizer));
    runtime.shutdown_background();
    result
}

async fn serve(config: Config, translator: Loader, summarizer: Option<Loader>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
        .await
        .map_err(|e| {
            Error::usage(format!(
                "cannot listen on {}:{}: {e}; choose another --port or --host",
                config.host, config.port
            ))
        })?;
    let address: SocketAddr = listener
        .local_addr()
        .map_err(|e| Error::usage(format!("cannot read the address listened on: {e}")))?;
    eprintln!("tarjama: listening on http://{address} (loading the model; /health answers 503 until it is ready)");

    let started = Instant::now();
    let metrics = Arc::new(Metrics::new(config.max_queue));
    let (loaded_tx, loaded_rx) = mpsc::channel();
    let (translate, translate_jobs) = Queue::new(config.max_queue);
    let arriving = Arc::new(AtomicUsize::new(0));
    let shared = || batcher::Shared {
        metrics: metrics.clone(),
        arriving: arriving.clone(),
        check_summaries: config.check_summaries,
    };
    start_worker(
        "translate",
        translator,
        translate_jobs,
        loaded_tx.clone(),
        batcher::translate_worker,
        shared(),
    )?;
    let mut models = 1;
    let summarize = match summarizer {
        Some(load) => {
            let (queue, jobs) = Queue::new(config.max_queue);
            start_worker(
                "summarize",
                load,
                jobs,
                loaded_tx,
                batcher::summarize_worker,
                shared(),
            )?;
            models += 1;
            Some(queue)
        }
        None => None,
    };
    let state = Arc::new(State {
        config,
        arriving,
        ready: AtomicBool::new(false),
        translate,
        summarize,
        metrics,
    });

    // The models load on their threads; the first failure stops the server.
    let (failed_tx, failed_rx) = oneshot::channel::<Error>();
    let loading = state.clone();
    // A plain thread: the runtime must not wait for it when a signal comes during loading.
    std::thread::spawn(move || {
        for _ in 0..models {
            match loaded_rx.recv() {
                Ok(Ok(describe)) => eprintln!("tarjama: loaded {describe}"),
                Ok(Err(e)) => {
                    let _ = failed_tx.send(e);
                    return;
                }
                Err(_) => return,
            }
        }
        loading.ready.store(true, Ordering::SeqCst);
        loading.metrics.loaded();
        eprintln!(
            "tarjama: ready in {:.2}s: http://{address}",
            started.elapsed().as_secs_f64()
        );
    });

    let failure = Arc::new(Mutex::new(None));
    let stop = {
        let failure = failure.clone();
        async move {
            tokio::select! {
                code = signal() => {
                    eprintln!("tarjama: {}: no new connections; answering the requests in flight, then exiting (a second signal exits at once)",
                        if code == SIGTERM_EXIT { "terminated (SIGTERM)" } else { "interrupted" });
                    tokio::spawn(async {
                        let code = signal().await;
                        std::process::exit(code);
                    });
                }
                Ok(e) = failed_rx => {
                    *failure.lock().expect("never poisoned") = Some(e);
                }
            }
        }
    };
    let app = handlers::router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| Error::model(format!("the HTTP server failed: {e}")))?;
    // Every request has its answer: the workers may go (one still loading is left behind, and
    // ends with the process).
    state.translate.close();
    if let Some(q) = &state.summarize {
        q.close();
    }
    if let Some(e) = failure.lock().expect("never poisoned").take() {
        return Err(e);
    }
    eprintln!("tarjama: stopped");
    Ok(())
}

const SIGTERM_EXIT: i32 = 143;
const SIGINT_EXIT: i32 = 130;

/// Waits for SIGTERM or Ctrl-C and returns the exit status a second one would end with.
async fn signal() -> i32 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => SIGTERM_EXIT,
                _ = tokio::signal::ctrl_c() => SIGINT_EXIT,
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                SIGINT_EXIT
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        SIGINT_EXIT
    }
}
