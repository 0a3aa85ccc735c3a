//! The routes: each handler reads its body within the limit, checks the API key and the request,
//! and hands the work to its model's queue.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State as Shared};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::api::{self, ApiError, Fields, Format, Source, Texts};
use super::batcher::{Arriving, SummarizeJob, TranslateJob};
use super::{html, metrics, State};
use crate::document::Document;
use crate::pipeline;

type Answer = Result<Json<Value>, ApiError>;

pub(super) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/translate", post(translate).fallback(wrong_method))
        .route("/detect", post(detect).fallback(wrong_method))
        .route("/languages", get(languages).fallback(wrong_method))
        .route("/summarize", post(summarize).fallback(wrong_method))
        .route("/health", get(health).fallback(wrong_method))
        .route("/metrics", get(metrics).fallback(wrong_method))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state)
}

/// Counts every answer by endpoint and status, with its latency.
async fn measure(Shared(state): Shared<Arc<State>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("other", |p| p.as_str())
        .to_string();
    let response = next.run(request).await;
    state
        .metrics
        .request(&endpoint, response.status().as_u16(), started.elapsed());
    response
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "Not found: {} {}; the endpoints are POST /translate, POST /detect, GET /languages, POST /summarize, GET /health and GET /metrics",
            request.method(),
            request.uri().path()
        ),
    )
}

/// A known endpoint asked with another method: 405 in the API's error shape (axum's own 405
/// has an empty body, which clients that read `error` cannot report).
async fn wrong_method(request: Request) -> ApiError {
    let allowed = match request.uri().path() {
        "/languages" | "/health" | "/metrics" => "GET",
        _ => "POST",
    };
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "Method not allowed: {} {}; use {allowed}",
            request.method(),
            request.uri().path()
        ),
    )
}

impl State {
    /// The request's fields: the body read within its limit (413 past it), then parsed.
    async fn fields(&self, request: Request) -> Result<Fields, ApiError> {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let query = request.uri().query().map(str::to_string);
        let limit = self.config.body_limit();
        let body = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|e| {
                let e = e.into_inner();
                if e.is::<http_body_util::LengthLimitError>() {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!(
                            "Invalid request: the body is larger than {limit} bytes (--max-chars allows {} characters of text)",
                            self.config.max_chars
                        ),
                    )
                } else {
                    ApiError::bad_request(format!("Invalid request: cannot read the body: {e}"))
                }
            })?;
        let fields = Fields::parse(content_type.as_deref(), &body, query.as_deref())?;
        self.authorize(&fields)?;
        Ok(fields)
    }

    /// With API keys set, 403 unless the request carries one of them.
    fn authorize(&self, fields: &Fields) -> Result<(), ApiError> {
        let Some(keys) = &self.config.api_keys else {
            return Ok(());
        };
        match fields.api_key() {
            Some(key) if keys.contains(key) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::FORBIDDEN, "Invalid API key")),
            None => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "Invalid request: this server needs an API key: pass api_key",
            )),
        }
    }

    fn check_ready(&self) -> Result<(), ApiError> {
        if self.ready.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(ApiError {
                retry_after: Some(5),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The model is still loading; retry when /health answers 200",
                )
            })
        }
    }

    /// Translates texts (each a document of lines) through the queue.
    async fn translate_texts(
        &self,
        texts: &[String],
        arriving: Arriving,
    ) -> Result<Vec<String>, ApiError> {
        let permit = self.translate.place()?;
        let (reply, answer) = oneshot::channel();
        let job = TranslateJob {
            docs: texts.iter().map(|t| Document::parse(t)).collect(),
            reply,
            permit,
        };
        self.translate
            .run(job, answer, self.config.timeout, Some(arriving))
            .await
    }
}

async fn translate(Shared(state): Shared<Arc<State>>, request: Request) -> Answer {
    let arriving = Arriving::new(&state.arriving);
    let fields = state.fields(request).await?;
    let request = api::translate_request(&fields, state.config.max_chars)?;
    state.check_ready()?;
    let texts = request.texts.as_slice();
    let detected = match request.source {
        Source::Auto => Some(super::detect::detect_source(texts)?),
        Source::Arabic => None,
    };
    let english: Vec<String> = match request.format {
        Format::Text => state.translate_texts(texts, arriving).await?,
        Format::Html => {
            let unparsable =
                || ApiError::bad_request("Invalid request: q is not HTML that can be parsed");
            let nodes: Vec<Vec<String>> = texts
                .iter()
                .map(|t| html::texts(t).ok_or_else(unparsable))
                .collect::<Result<_, _>>()?;
            let flat: Vec<String> = nodes.iter().flatten().cloned().collect();
            let mut translated = state.translate_texts(&flat, arriving).await?.into_iter();
            texts
                .iter()
                .zip(&nodes)
                .map(|(t, n)| {
                    let mine: Vec<String> = translated.by_ref().take(n.len()).collect();
                    html::replace(t, &mine).ok_or_else(unparsable)
                })
                .collect::<Result<_, _>>()?
        }
    };
    let mut answer = json!({ "translatedText": request.texts.shape(english) });
    if let Some(detected) = detected {
        let one = json!({"confidence": detected.confidence, "language": detected.language});
        answer["detectedLanguage"] = match &request.texts {
            Texts::One(_) => one,
            Texts::Many(v) => Value::Array(vec![one; v.len()]),
        };
    }
    if request.alternatives > 0 {
        answer["alternatives"] = match &request.texts {
            Texts::One(_) => json!([]),
            Texts::Many(v) => Value::Array(vec![json!([]); v.len()]),
        };
    }
    Ok(Json(answer))
}

async fn detect(Shared(state): Shared<Arc<State>>, request: Request) -> Answer {
    let fields = state.fields(request).await?;
    let text = api::detect_request(&fields, state.config.max_chars)?;
    Ok(Json(super::detect::detect_languages(&text)))
}

async fn languages() -> Json<Value> {
    Json(api::languages())
}

async fn summarize(Shared(state): Shared<Arc<State>>, request: Request) -> Answer {
    let fields = state.fields(request).await?;
    let Some(queue) = &state.summarize else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "This server has no summarizer: start it with --summarizer MODEL",
        ));
    };
    let request = api::summarize_request(&fields, state.config.max_chars)?;
    state.check_ready()?;
    let articles = request
        .texts
        .as_slice()
        .iter()
        .map(|text| {
            let text = match request.format {
                Format::Text => text.clone(),
                Format::Html => html::plain_text(text).ok_or_else(|| {
                    ApiError::bad_request("Invalid request: q is not HTML that can be parsed")
                })?,
            };
            pipeline::article_paragraphs(&text, false)
                .map_err(|e| ApiError::bad_request(format!("Invalid request: {}", e.one_line())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let permit = queue.place()?;
    let (reply, answer) = oneshot::channel();
    let job = SummarizeJob {
        articles,
        length: request.length,
        reply,
        permit,
    };
    let summaries = queue.run(job, answer, state.config.timeout, None).await?;
    Ok(Json(json!({ "summary": request.texts.shape(summaries) })))
}

async fn health(Shared(state): Shared<Arc<State>>) -> Response {
    if state.ready.load(Ordering::SeqCst) {
        Json(json!({"status": "ok"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
            .into_response()
    }
}

async fn metrics(Shared(state): Shared<Arc<State>>) -> Response {
    let text = state.metrics.encode(state.queue_depth());
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        Body::from(text),
    )
        .into_response()
}
