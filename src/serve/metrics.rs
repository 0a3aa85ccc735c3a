//! `GET /metrics`: what the server has done, in the Prometheus (OpenMetrics) text format:
//! requests by endpoint and status and their latency, the queue, the batches the worker formed
//! (sentences and requests in each) and the sentences it translated and the time it spent.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Request {
    endpoint: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Endpoint {
    endpoint: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Request, Counter>,
    errors: Family<Request, Counter>,
    latency: Family<Endpoint, Histogram>,
    queue_depth: Gauge,
    queue_capacity: Gauge,
    loaded: Gauge,
    batch_sentences: Histogram,
    batch_requests: Histogram,
    sentences: Counter,
    engine_seconds: Counter<f64, AtomicU64>,
    engine_errors: Counter,
    summaries: Counter,
    summarize_seconds: Counter<f64, AtomicU64>,
    sentences_per_second: Gauge<f64, AtomicU64>,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    pub fn new(queue_capacity: usize) -> Metrics {
        let mut registry = Registry::with_prefix("tarjama");
        let m = Metrics {
            requests: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            queue_depth: Gauge::default(),
            queue_capacity: Gauge::default(),
            loaded: Gauge::default(),
            batch_sentences: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            batch_requests: Histogram::new(exponential_buckets(1.0, 2.0, 10)),
            sentences: Counter::default(),
            engine_seconds: Counter::default(),
            engine_errors: Counter::default(),
            summaries: Counter::default(),
            summarize_seconds: Counter::default(),
            sentences_per_second: Gauge::default(),
            registry: Registry::default(),
        };
        m.queue_capacity.set(queue_capacity as i64);
        registry.register(
            "http_requests",
            "HTTP requests answered, by endpoint and status",
            m.requests.clone(),
        );
        registry.register(
            "http_errors",
            "HTTP requests answered with a 4xx or 5xx status, by endpoint and status",
            m.errors.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by endpoint",
            m.latency.clone(),
        );
        registry.register(
            "queue_depth",
            "Requests admitted and not yet answered (waiting or being translated or summarized)",
            m.queue_depth.clone(),
        );
        registry.register(
            "queue_capacity",
            "Requests admitted at once (--max-queue) per model",
            m.queue_capacity.clone(),
        );
        registry.register(
            "model_loaded",
            "1 once the model is loaded and /health answers 200",
            m.loaded.clone(),
        );
        registry.register(
            "batch_sentences",
            "Sentences in each call of the translation engine",
            m.batch_sentences.clone(),
        );
        registry.register(
            "batch_requests",
            "Requests whose sentences shared each call of the translation engine",
            m.batch_requests.clone(),
        );
        registry.register(
            "translated_sentences",
            "Sentences translated",
            m.sentences.clone(),
        );
        registry.register(
            "engine_busy_seconds",
            "Time the translation engine spent translating (sentences / this = sentences per second)",
            m.engine_seconds.clone(),
        );
        registry.register(
            "engine_errors",
            "Engine calls that failed (their requests were answered with 500)",
            m.engine_errors.clone(),
        );
        registry.register("summaries", "Articles summarized", m.summaries.clone());
        registry.register(
            "summarize_busy_seconds",
            "Time the summarization engine spent summarizing",
            m.summarize_seconds.clone(),
        );
        registry.register(
            "last_batch_sentences_per_second",
            "Sentences per second of the last call of the translation engine",
            m.sentences_per_second.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A request answered with `status` after `elapsed`.
    pub fn request(&self, endpoint: &str, status: u16, elapsed: Duration) {
        let labels = Request {
            endpoint: endpoint.to_string(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        if status >= 400 {
            self.errors.get_or_create(&labels).inc();
        }
        self.latency
            .get_or_create(&Endpoint {
                endpoint: endpoint.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// One call of the translation engine.
    pub fn batch(&self, sentences: usize, requests: usize, elapsed: Duration) {
        self.batch_sentences.observe(sentences as f64);
        self.batch_requests.observe(requests as f64);
        self.sentences.inc_by(sentences as u64);
        let seconds = elapsed.as_secs_f64();
        self.engine_seconds.inc_by(seconds);
        if seconds > 0.0 {
            self.sentences_per_second.set(sentences as f64 / seconds);
        }
    }

    pub fn summaries(&self, articles: usize, elapsed: Duration) {
        self.summaries.inc_by(articles as u64);
        self.summarize_seconds.inc_by(elapsed.as_secs_f64());
    }

    pub fn engine_error(&self) {
        self.engine_errors.inc();
    }

    pub fn loaded(&self) {
        self.loaded.set(1);
    }

    /// The text of every metric, with the queue's depth as it is now.
    pub fn encode(&self, queue_depth: usize) -> String {
        self.queue_depth.set(queue_depth as i64);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
