//! The push-setup routes: `PUT …/ai-gateway/gateways/{id}` (AI Gateway: Edit) and the account's
//! Logpush jobs, `…/logpush/jobs[/{job_id}]` (Logs: Edit). They go through the same pipeline as
//! every other route (auth, rate limit, faults, permission; see `crate::routes`).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::settings::{
    Destination, GatewayUpdate, JobUpdate, LogpushJob, NewJob, OutputOptions, AI_GATEWAY_DATASET,
    MAX_JOBS,
};
use crate::auth::Access;
use crate::emulator::{write, Emulator};
use crate::envelope::{json_response, success_body, ApiError};
use crate::log_record::now_millis;
use crate::routes::{no_route, serve};
use crate::stats::Endpoint;

/// Logpush's default and largest records per file.
const DEFAULT_MAX_UPLOAD_RECORDS: u32 = 100_000;

pub(crate) async fn update_gateway(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Path((account, gateway_id))) = path else {
        return no_route(State(emulator)).await;
    };
    serve(
        &emulator,
        Endpoint::UpdateGateway,
        &headers,
        Access::edit(&account),
        |shared, _| {
            let update = GatewayUpdate::parse(&body)?;
            let mut store = write(&shared.store);
            let gateway = store
                .gateway_mut(&account, &gateway_id)
                .ok_or_else(ApiError::not_found)?;
            gateway.update(update, now_millis());
            success_body(gateway.json(), &[], None).map(json_response)
        },
    )
    .await
}

pub(crate) async fn list_jobs(
    State(emulator): State<Emulator>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Path(account)) = path else {
        return no_route(State(emulator)).await;
    };
    serve(
        &emulator,
        Endpoint::LogpushJobs,
        &headers,
        Access::logs(&account),
        |shared, _| {
            let jobs = crate::emulator::read(&shared.store)
                .logpush_jobs(&account)
                .to_vec();
            success_body(jobs, &[], None).map(json_response)
        },
    )
    .await
}

/// Creates a job. An HTTP destination first gets Logpush's validation upload; a destination
/// that does not accept it refuses the job (400 / 1002), as on Cloudflare.
pub(crate) async fn create_job(
    State(emulator): State<Emulator>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(Path(account)) = path else {
        return no_route(State(emulator)).await;
    };
    let mut checked = None;
    let allow_http = emulator.shared.config.allow_http_push;
    let admitted = serve(
        &emulator,
        Endpoint::LogpushJobs,
        &headers,
        Access::logs(&account),
        |shared, _| {
            let job: NewJob =
                serde_json::from_slice(&body).map_err(|_| ApiError::validation(&["body"]))?;
            if job.dataset.as_deref() != Some(AI_GATEWAY_DATASET) {
                return Err(ApiError::validation(&["body", "dataset"]));
            }
            let destination = Destination::parse(&job.destination_conf, allow_http)?;
            let existing = crate::emulator::read(&shared.store)
                .logpush_jobs(&account)
                .len();
            if existing >= MAX_JOBS {
                return Err(ApiError::bad_request(
                    1004,
                    "the account already has the maximum number of Logpush jobs for this dataset",
                ));
            }
            checked = Some((job, destination));
            success_body((), &[], None).map(json_response)
        },
    )
    .await;
    let Some((job, destination)) = checked else {
        return admitted;
    };
    let shared = &emulator.shared;
    if let Err(reason) = super::validate_destination(shared, &destination).await {
        let error = ApiError::bad_request(1002, format!("error validating destination: {reason}"));
        return with_headers_of(admitted, axum::response::IntoResponse::into_response(error));
    }
    let created = {
        let mut store = write(&shared.store);
        let id = store.next_job_id(&account);
        let created = LogpushJob {
            id,
            dataset: AI_GATEWAY_DATASET.to_owned(),
            destination_conf: job.destination_conf,
            enabled: job.enabled.unwrap_or(true),
            name: job.name,
            output_options: job.output_options.unwrap_or(OutputOptions {
                timestamp_format: None,
                output_type: Some("ndjson".into()),
            }),
            max_upload_records: job
                .max_upload_records
                .unwrap_or(DEFAULT_MAX_UPLOAD_RECORDS)
                .clamp(1, DEFAULT_MAX_UPLOAD_RECORDS),
            kind: "",
            frequency: "high",
            last_complete: None,
            last_error: None,
            error_message: None,
        };
        if let Some(jobs) = store.logpush_jobs_mut(&account) {
            jobs.push(created.clone());
        }
        created
    };
    let response = success_body(created, &[], None)
        .map(json_response)
        .unwrap_or_else(axum::response::IntoResponse::into_response);
    with_headers_of(admitted, response)
}

/// `response` with the rate-limit headers the pipeline put on `admitted`.
fn with_headers_of(admitted: Response, mut response: Response) -> Response {
    for name in ["ratelimit", "ratelimit-policy"] {
        if let Some(value) = admitted.headers().get(name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

type JobPath = Result<Path<(String, String)>, PathRejection>;

pub(crate) async fn get_job(
    State(emulator): State<Emulator>,
    path: JobPath,
    headers: HeaderMap,
) -> Response {
    job_call(emulator, path, headers, JobCall::Get).await
}

pub(crate) async fn update_job(
    State(emulator): State<Emulator>,
    path: JobPath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    job_call(emulator, path, headers, JobCall::Update(body)).await
}

pub(crate) async fn delete_job(
    State(emulator): State<Emulator>,
    path: JobPath,
    headers: HeaderMap,
) -> Response {
    job_call(emulator, path, headers, JobCall::Delete).await
}

enum JobCall {
    Get,
    Update(Bytes),
    Delete,
}

async fn job_call(
    emulator: Emulator,
    path: JobPath,
    headers: HeaderMap,
    call: JobCall,
) -> Response {
    let Ok(Path((account, job_id))) = path else {
        return no_route(State(emulator)).await;
    };
    let allow_http = emulator.shared.config.allow_http_push;
    serve(
        &emulator,
        Endpoint::LogpushJobs,
        &headers,
        Access::logs(&account),
        |shared, _| {
            let job_id: u64 = job_id
                .parse()
                .map_err(|_| ApiError::validation(&["path", "job_id"]))?;
            let mut store = write(&shared.store);
            let jobs = store
                .logpush_jobs_mut(&account)
                .ok_or_else(ApiError::not_found)?;
            let index = jobs
                .iter()
                .position(|job| job.id == job_id)
                .ok_or_else(ApiError::not_found)?;
            match call {
                JobCall::Get => success_body(&jobs[index], &[], None).map(json_response),
                JobCall::Delete => {
                    jobs.remove(index);
                    success_body(serde_json::json!({"id": job_id}), &[], None).map(json_response)
                }
                JobCall::Update(body) => {
                    let update: JobUpdate = serde_json::from_slice(&body)
                        .map_err(|_| ApiError::validation(&["body"]))?;
                    let job = &mut jobs[index];
                    if let Some(conf) = update.destination_conf {
                        Destination::parse(&conf, allow_http)?;
                        job.destination_conf = conf;
                    }
                    if let Some(enabled) = update.enabled {
                        job.enabled = enabled;
                    }
                    if let Some(options) = update.output_options {
                        job.output_options = options;
                    }
                    if let Some(max) = update.max_upload_records {
                        job.max_upload_records = max.clamp(1, DEFAULT_MAX_UPLOAD_RECORDS);
                    }
                    success_body(&*job, &[], None).map(json_response)
                }
            }
        },
    )
    .await
}
