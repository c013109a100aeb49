//! What one Lambda execution environment keeps across invocations ([`Environment`]), and
//! one invocation with it ([`Environment::invoke`]): the registry client is made on the
//! first invocation (its `GetAuthorizationToken` token is then reused, and refreshed when it
//! expires), each run stops before the invocation's deadline.

use std::collections::BTreeMap;
use std::sync::Arc;

use ptc_core::ecr::EcrApi;
use ptc_core::metrics::MetricsApi;
use ptc_core::objects::ObjectsApi;
use ptc_core::oci::RegistryClient;
use ptc_core::secrets::SecretsApi;
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::queued::{Delivery, PlanReport, QueueDeps, WorkReport};
use crate::{Deps, Options, PrewarmReport, handle, parse_event, registry_unavailable};

/// The queue's ports and places, when the work queue is configured
/// ([`ptc_core::config::QueueSettings`]).
pub struct QueuePorts {
    /// SQS.
    pub queue: Box<dyn ptc_core::queue::QueueApi>,
    /// The runs' store.
    pub store: Box<dyn ptc_core::queue::RunStore>,
    /// `PTC_WORK_QUEUE_URL`.
    pub queue_url: String,
    /// `PTC_WORK_DLQ_URL`.
    pub dead_letter_url: String,
    /// `PTC_QUEUE_IMAGES_PER_MESSAGE`.
    pub per_message: usize,
    /// `PTC_RUN_LEASE_HOURS`.
    pub lease: std::time::Duration,
    /// `PTC_QUEUE_RETRY_SECS`.
    pub retry_backoff: std::time::Duration,
}

impl QueuePorts {
    /// The ports as a job takes them.
    pub fn deps(&self) -> QueueDeps<'_> {
        QueueDeps {
            queue: self.queue.as_ref(),
            store: self.store.as_ref(),
            queue_url: &self.queue_url,
            dead_letter_url: &self.dead_letter_url,
            per_message: self.per_message,
            lease: self.lease,
            retry_backoff: self.retry_backoff,
        }
    }
}

/// What an invocation answers: a run's report (no queue), a planner's, or a worker's.
pub enum Answer {
    /// A run in this invocation (no work queue configured).
    Run(Box<PrewarmReport>),
    /// A planner's report (a schedule, `{}` or a list, with the work queue configured).
    Plan(PlanReport),
    /// A worker's report (an SQS event): its `batch_item_failures` are the answer.
    Batch(Box<WorkReport>),
}

/// The SQS records of an event the queue's event source mapping sent
/// (`aws_lambda_events`' `SqsEvent`: `{"Records": [{"eventSource": "aws:sqs", ...}]}`);
/// `None` for any other event. `Err` for an SQS event that does not have that shape.
pub fn sqs_deliveries(payload: &Value) -> Option<Result<Vec<Delivery>, String>> {
    let records = payload.get("Records")?.as_array()?;
    if !records
        .iter()
        .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
    {
        return None;
    }
    Some(
        serde_json::from_value::<aws_lambda_events::event::sqs::SqsEvent>(payload.clone())
            .map_err(|e| format!("unsupported or malformed event: not an SQS event: {e}"))
            .map(|event| {
                event
                    .records
                    .into_iter()
                    .map(|r| Delivery {
                        message_id: r.message_id.unwrap_or_default(),
                        body: r.body.unwrap_or_default(),
                    })
                    .collect()
            }),
    )
}

/// The ports, the HTTP client and the options every invocation of an execution environment
/// shares; built once at start-up by `main.rs`.
pub struct Environment {
    /// ECR's API (see [`Deps::ecr`]); shared with the registry token source.
    pub ecr: Arc<dyn EcrApi>,
    /// Secrets Manager (see [`Deps::secrets`]).
    pub secrets: Box<dyn SecretsApi>,
    /// Where the runs' data points go (see [`Deps::metrics`]).
    pub metrics: Box<dyn MetricsApi>,
    /// The long watch list's store (see [`Deps::objects`]).
    pub objects: Box<dyn ObjectsApi>,
    /// The HTTP client of every registry request (connection reuse across invocations).
    pub http: reqwest::Client,
    /// `PTC_UPSTREAM_ENDPOINTS`: upstream host → URL (see [`Deps::upstream_endpoints`]).
    pub upstream_endpoints: BTreeMap<String, String>,
    /// `PTC_REGISTRY_ENDPOINT`: the registry endpoint's URL instead of the token's
    /// `proxyEndpoint` (the local stack).
    pub registry_endpoint: Option<String>,
    /// The runs' options, from the settings.
    pub options: Options,
    /// The work queue, when configured: schedules plan into it, SQS events are its work.
    pub queue: Option<QueuePorts>,
    /// The registry client and host, made on the first invocation that reaches ECR.
    cache: OnceCell<(RegistryClient, String)>,
}

impl Environment {
    /// An environment whose registry client is made on the first invocation.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        ecr: Arc<dyn EcrApi>,
        secrets: Box<dyn SecretsApi>,
        metrics: Box<dyn MetricsApi>,
        objects: Box<dyn ObjectsApi>,
        http: reqwest::Client,
        upstream_endpoints: BTreeMap<String, String>,
        registry_endpoint: Option<String>,
        options: Options,
    ) -> Self {
        Self {
            ecr,
            secrets,
            metrics,
            objects,
            http,
            upstream_endpoints,
            registry_endpoint,
            options,
            queue: None,
            cache: OnceCell::new(),
        }
    }

    /// The environment with the work queue.
    pub fn with_queue(mut self, queue: Option<QueuePorts>) -> Self {
        self.queue = queue;
        self
    }

    /// One invocation of any event: an SQS event is a worker's batch, anything else a run
    /// (planned into the queue when one is configured, else done here).
    pub async fn answer(&self, payload: &Value, deadline_ms: u64) -> Answer {
        let now = time::OffsetDateTime::now_utc();
        if let Some(deliveries) = sqs_deliveries(payload) {
            let ids = |d: &[Delivery]| d.iter().map(|d| d.message_id.clone()).collect::<Vec<_>>();
            let deliveries = match deliveries {
                Ok(d) => d,
                Err(err) => return Answer::Batch(Box::new(WorkReport::refused(Vec::new(), err))),
            };
            let Some(queue) = &self.queue else {
                return Answer::Batch(Box::new(WorkReport::refused(
                    ids(&deliveries),
                    "an SQS event, but the work queue is not configured (PTC_WORK_QUEUE_URL, PTC_WORK_DLQ_URL, PTC_RUN_TABLE)".into(),
                )));
            };
            let mut options = self.options.clone();
            options.stop_at = Some(ptc_core::deadline::stop_at(deadline_ms));
            options.finish_by = Some(ptc_core::deadline::finish_by(deadline_ms));
            return match self.deps().await {
                Ok((client, host)) => {
                    let deps = self.deps_with(client, host);
                    Answer::Batch(Box::new(
                        crate::queued::work(&deps, &queue.deps(), &options, &deliveries, now).await,
                    ))
                }
                Err(err) => Answer::Batch(Box::new(WorkReport::refused(
                    ids(&deliveries),
                    format!("cannot authenticate to the registry endpoint: {err}"),
                ))),
            };
        }
        match &self.queue {
            Some(queue) => {
                let (trigger, images) = match parse_event(payload) {
                    Ok(parsed) => parsed,
                    // The report says what is wrong with the event.
                    Err(_) => {
                        return Answer::Run(Box::new(self.invoke(payload, deadline_ms).await));
                    }
                };
                match self.deps().await {
                    Ok((client, host)) => {
                        let deps = self.deps_with(client, host);
                        Answer::Plan(
                            crate::queued::plan(
                                &deps,
                                &queue.deps(),
                                &self.options,
                                &trigger,
                                images,
                                now,
                            )
                            .await,
                        )
                    }
                    Err(err) => Answer::Run(Box::new(
                        registry_unavailable(self.metrics.as_ref(), &self.options, err).await,
                    )),
                }
            }
            None => Answer::Run(Box::new(self.invoke(payload, deadline_ms).await)),
        }
    }

    async fn deps(&self) -> Result<(&RegistryClient, &str), String> {
        self.cache
            .get_or_try_init(|| {
                RegistryClient::for_ecr(
                    self.http.clone(),
                    self.ecr.clone(),
                    self.registry_endpoint.as_deref(),
                )
            })
            .await
            .map(|(client, host)| (client, host.as_str()))
            .map_err(|e| e.to_string())
    }

    fn deps_with<'a>(&'a self, client: &'a RegistryClient, host: &'a str) -> Deps<'a> {
        Deps {
            ecr: self.ecr.as_ref(),
            secrets: self.secrets.as_ref(),
            objects: self.objects.as_ref(),
            metrics: self.metrics.as_ref(),
            cache: client,
            registry_host: host,
            http: &self.http,
            upstream_endpoints: &self.upstream_endpoints,
        }
    }

    /// One invocation: `payload` to a report, stopping before `deadline_ms` (the
    /// invocation's deadline, milliseconds since the Unix epoch). A registry endpoint that
    /// cannot be reached (no token) gives a report with that error and no run.
    pub async fn invoke(&self, payload: &Value, deadline_ms: u64) -> PrewarmReport {
        let stop_at = ptc_core::deadline::stop_at(deadline_ms);
        let finish_by = ptc_core::deadline::finish_by(deadline_ms);
        let cache = self
            .cache
            .get_or_try_init(|| {
                RegistryClient::for_ecr(
                    self.http.clone(),
                    self.ecr.clone(),
                    self.registry_endpoint.as_deref(),
                )
            })
            .await;
        let (client, host) = match cache {
            Ok(cache) => cache,
            Err(err) => {
                return registry_unavailable(self.metrics.as_ref(), &self.options, err.to_string())
                    .await;
            }
        };
        let deps = Deps {
            ecr: self.ecr.as_ref(),
            secrets: self.secrets.as_ref(),
            objects: self.objects.as_ref(),
            metrics: self.metrics.as_ref(),
            cache: client,
            registry_host: host,
            http: &self.http,
            upstream_endpoints: &self.upstream_endpoints,
        };
        handle(
            &deps,
            &self.options,
            payload,
            time::OffsetDateTime::now_utc(),
            Some((stop_at, finish_by)),
        )
        .await
    }
}
