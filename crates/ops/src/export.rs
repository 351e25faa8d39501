//! Trace export: interactions formatted as CSV (with a header row) or JSON Lines, a batch at a
//! time, on a blocking thread of its own beside the one reading rows — the API's
//! `/traces/export` streams it, `bench queries` measures it.

use bytes::Bytes;
use langguard_clock::format_ms;
use langguard_store::{IngestSource, Interaction, LogDetails, StoreResult};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::views::TRACE_CSV_HEADER;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

/// Formats the store's batches as they arrive into chunks of bytes. Memory holds a few batches
/// and chunks whatever the export's size; dropping the receiver stops formatting and, through
/// the dropped row receiver, the query. A failure is the last item.
pub fn format(
    rows: mpsc::Receiver<StoreResult<Vec<Interaction>>>,
    format: ExportFormat,
) -> mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || write_all(rows, format, &tx));
    rx
}

/// One exported trace; `T` is text from outside (plain for JSON, a [`CsvCell`] for CSV), `M`
/// the metadata as CSV text or as a raw JSON object, and `D` Cloudflare's extra log fields as
/// CSV columns (a JSON line has them as fields of its own, as the API's trace does).
#[derive(Serialize)]
struct ExportRow<T, M, D> {
    id: i64,
    integration_id: i64,
    gateway: T,
    log_id: T,
    created_at: String,
    provider: T,
    model: T,
    requested_model: Option<T>,
    source: &'static str,
    path: Option<T>,
    status: &'static str,
    status_code: Option<i64>,
    cached: bool,
    duration_ms: i64,
    tokens_in: Option<i64>,
    tokens_out: Option<i64>,
    cost_usd: Option<f64>,
    cost_source: Option<&'static str>,
    metadata: M,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<D>,
}

/// Cloudflare's extra log fields as CSV cells, a column each (in [`TRACE_CSV_HEADER`]'s order);
/// `dlp_profiles` and `guardrails` as their JSON text.
#[derive(Serialize)]
struct CsvDetails<'a> {
    event_id: Option<CsvCell<'a>>,
    request_type: Option<CsvCell<'a>>,
    model_type: Option<CsvCell<'a>>,
    step: Option<i64>,
    feedback: Option<i64>,
    score: Option<f64>,
    dlp_action: Option<CsvCell<'a>>,
    dlp_profiles: Option<String>,
    guardrails: Option<String>,
    user_agent: Option<CsvCell<'a>>,
    tokens_cached: Option<i64>,
    tokens_reasoning: Option<i64>,
    byok: Option<bool>,
    cost_estimate_usd: Option<f64>,
}

impl<'a> CsvDetails<'a> {
    fn of(d: &'a LogDetails) -> Self {
        let cell = |t: &'a Option<String>| t.as_deref().map(CsvCell);
        // JSON text starts with `[` or `{`, never with what a spreadsheet would run.
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        Self {
            event_id: cell(&d.event_id),
            request_type: cell(&d.request_type),
            model_type: cell(&d.model_type),
            step: d.step,
            feedback: d.feedback,
            score: d.score,
            dlp_action: cell(&d.dlp_action),
            dlp_profiles: json(&d.dlp_profiles),
            guardrails: json(&d.guardrails),
            user_agent: cell(&d.user_agent),
            tokens_cached: d.tokens_cached,
            tokens_reasoning: d.tokens_reasoning,
            byok: d.byok,
            cost_estimate_usd: d.cost_estimate_usd,
        }
    }
}

/// A JSON line: the row with Cloudflare's extra log fields beside the others.
#[derive(Serialize)]
struct JsonRow<'a, T, M> {
    #[serde(flatten)]
    row: ExportRow<T, M, ()>,
    #[serde(flatten)]
    details: &'a LogDetails,
}

fn export_row<'a, T, M, D>(
    i: &'a Interaction,
    text: impl Fn(&'a str) -> T,
    metadata: M,
    details: Option<D>,
) -> ExportRow<T, M, D> {
    let log = &i.log;
    ExportRow {
        id: i.id,
        integration_id: i.integration_id,
        gateway: text(&i.gateway),
        log_id: text(&log.log_id),
        created_at: format_ms(log.created_at_ms),
        provider: text(&log.provider),
        model: text(&log.model),
        requested_model: log.requested_model.as_deref().map(&text),
        source: IngestSource::of_log_id(&log.log_id).as_str(),
        path: log.path.as_deref().map(&text),
        status: if log.success { "success" } else { "error" },
        status_code: log.status_code,
        cached: log.cached,
        duration_ms: log.duration_ms,
        tokens_in: log.tokens_in,
        tokens_out: log.tokens_out,
        cost_usd: log.cost_usd,
        cost_source: log.cost_source.map(|s| s.as_str()),
        metadata,
        details,
    }
}

const EMPTY_OBJECT: &str = "{}";

/// A CSV cell of text from outside — models, paths and metadata come from whoever calls the
/// customer's gateway. A spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return as a formula (`=HYPERLINK(…)`), so such a cell gets a leading `'`
/// (OWASP's rule for CSV injection). JSON Lines stay exact.
struct CsvCell<'a>(&'a str);

impl Serialize for CsvCell<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            serializer.serialize_str(&format!("'{}", self.0))
        } else {
            serializer.serialize_str(self.0)
        }
    }
}

fn write_all(
    mut rows: mpsc::Receiver<StoreResult<Vec<Interaction>>>,
    format: ExportFormat,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let mut buffer = Vec::with_capacity(256 * 1024);
    if format == ExportFormat::Csv {
        buffer.extend_from_slice(TRACE_CSV_HEADER.join(",").as_bytes());
        buffer.push(b'\n');
    }
    while let Some(batch) = rows.blocking_recv() {
        let chunk = batch
            .map_err(|e| {
                tracing::error!(error = %e, "trace export stopped part-way");
                std::io::Error::other("the export failed part-way")
            })
            .and_then(|batch| append_rows(&mut buffer, &batch, format));
        match chunk {
            Ok(()) => {
                let bytes = Bytes::from(std::mem::replace(
                    &mut buffer,
                    Vec::with_capacity(256 * 1024),
                ));
                if tx.blocking_send(Ok(bytes)).is_err() {
                    return; // the client went away; dropping `rows` stops the query
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
    }
    if !buffer.is_empty() {
        let _ = tx.blocking_send(Ok(Bytes::from(buffer)));
    }
}

fn append_rows(
    buffer: &mut Vec<u8>,
    batch: &[Interaction],
    format: ExportFormat,
) -> Result<(), std::io::Error> {
    match format {
        ExportFormat::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(buffer);
            for i in batch {
                let metadata = CsvCell(i.log.metadata.as_deref().unwrap_or(EMPTY_OBJECT));
                let details = CsvDetails::of(&i.log.details);
                writer.serialize(export_row(i, CsvCell, metadata, Some(details)))?;
            }
            writer.flush()?;
        }
        ExportFormat::Jsonl => {
            for i in batch {
                let text = i.log.metadata.as_deref().unwrap_or(EMPTY_OBJECT);
                // Stored metadata is JSON written by the importer; a row whose text isn't (it
                // would be corrupt) is exported with empty metadata rather than breaking the line.
                let metadata: &RawValue = serde_json::from_str(text)
                    .or_else(|_| serde_json::from_str(EMPTY_OBJECT))
                    .map_err(std::io::Error::other)?;
                let row = JsonRow {
                    row: export_row(i, |t| t, metadata, None),
                    details: &i.log.details,
                };
                serde_json::to_writer(&mut *buffer, &row)?;
                buffer.push(b'\n');
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use langguard_store::NewInteraction;
    use serde_json::{json, Value};

    fn interaction(metadata: Option<&str>) -> Interaction {
        Interaction {
            id: 7,
            integration_id: 1,
            gateway: "gw".into(),
            log: NewInteraction {
                log_id: "log,\"1\"".into(),
                created_at_ms: 1_700_000_000_000,
                provider: "openai".into(),
                model: "gpt-4o".into(),
                path: None,
                status_code: Some(200),
                success: true,
                cached: false,
                duration_ms: 120,
                tokens_in: Some(10),
                tokens_out: None,
                cost_usd: Some(0.0125),
                cost_source: None,
                metadata: metadata.map(str::to_string),
                requested_model: None,
                details: Default::default(),
            },
        }
    }

    #[test]
    fn csv_rows_quote_what_needs_quoting_and_match_the_header() {
        let mut buffer = Vec::new();
        append_rows(
            &mut buffer,
            &[interaction(Some(r#"{"a":"x,y"}"#))],
            ExportFormat::Csv,
        )
        .expect("csv");
        let text = String::from_utf8(buffer).expect("utf-8");
        assert_eq!(
            text,
            "7,1,gw,\"log,\"\"1\"\"\",2023-11-14T22:13:20.000Z,openai,gpt-4o,,logs_api,,success,200,\
             false,120,10,,0.0125,,\"{\"\"a\"\":\"\"x,y\"\"}\",,,,,,,,,,,,,,\n"
        );
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let record = reader.records().next().expect("a row").expect("parses");
        assert_eq!(record.len(), TRACE_CSV_HEADER.len());
        assert_eq!(&record[3], "log,\"1\"");
        assert_eq!(&record[18], r#"{"a":"x,y"}"#);
    }

    #[test]
    fn csv_cells_that_a_spreadsheet_would_run_are_neutralised_and_jsonl_stays_exact() {
        let mut i = interaction(Some(r#"{"a":1}"#));
        for (model, want) in [
            ("=HYPERLINK(\"https://evil.example\",\"x\")", "'=HYPERLINK"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("gpt-4o", "gpt-4o"),
        ] {
            i.log.model = model.to_owned();
            i.log.path = Some(model.to_owned());
            let mut buffer = Vec::new();
            append_rows(&mut buffer, std::slice::from_ref(&i), ExportFormat::Csv).expect("csv");
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(buffer.as_slice());
            let record = reader.records().next().expect("a row").expect("parses");
            assert!(record[6].starts_with(want), "{model:?} → {:?}", &record[6]);
            assert!(record[9].starts_with(want), "{model:?} → {:?}", &record[9]);
            // Numbers are numbers, not text: a negative cost stays a number.
            assert!(!record[0].starts_with('\''));
            let mut lines = Vec::new();
            append_rows(&mut lines, std::slice::from_ref(&i), ExportFormat::Jsonl).expect("jsonl");
            let line: serde_json::Value = serde_json::from_slice(&lines).expect("json");
            assert_eq!(line["model"], model);
        }
        i.log.metadata = Some(r#"=cmd|' /C calc'!A0"#.to_owned());
        let mut buffer = Vec::new();
        append_rows(&mut buffer, std::slice::from_ref(&i), ExportFormat::Csv).expect("csv");
        assert!(String::from_utf8_lossy(&buffer).contains("'=cmd"));
    }

    #[test]
    fn jsonl_lines_carry_metadata_as_an_object() {
        let mut buffer = Vec::new();
        append_rows(
            &mut buffer,
            &[interaction(Some(r#"{"tier":"pro"}"#)), interaction(None)],
            ExportFormat::Jsonl,
        )
        .expect("jsonl");
        let text = String::from_utf8(buffer).expect("utf-8");
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["metadata"]["tier"], "pro");
        assert_eq!(lines[1]["metadata"], json!({}));
        assert_eq!(lines[0]["status"], "success");
        assert_eq!(lines[0]["cost_usd"], 0.0125);
    }
}
