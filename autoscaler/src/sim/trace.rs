//! Job traces: CSV, one row per job (`submitted_at,duration_s,tags,project,pipeline,stage`).
//!
//! Parsing only; errors name the file, line and column value that was wrong.

use std::collections::BTreeSet;

use autoscaler_core::model::Timestamp;

/// One job of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceJob {
    /// When the job became pending.
    pub submitted: Timestamp,
    /// How long it runs once started, in seconds.
    pub duration_s: u32,
    /// The job's tags.
    pub tags: BTreeSet<String>,
    /// Project path (reported, not used for scheduling).
    pub project: String,
    /// Pipeline id.
    pub pipeline: u64,
    /// Stage index in the pipeline.
    pub stage: u32,
}

/// A parsed trace, sorted by submission time (stable for equal times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// Where it came from, for reports.
    pub name: String,
    /// The jobs.
    pub jobs: Vec<TraceJob>,
}

/// A trace that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A row is malformed.
    #[error("{origin}:{line}: {message}")]
    Row {
        /// File name.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong, naming the column and value.
        message: String,
    },
    /// The header is not the expected one.
    #[error(
        "{origin}:1: expected header `submitted_at,duration_s,tags,project,pipeline,stage`, found `{found}`"
    )]
    Header {
        /// File name.
        origin: String,
        /// The header line found.
        found: String,
    },
    /// The trace holds no job.
    #[error("{origin}: the trace holds no job")]
    Empty {
        /// File name.
        origin: String,
    },
}

const HEADER: [&str; 6] = [
    "submitted_at",
    "duration_s",
    "tags",
    "project",
    "pipeline",
    "stage",
];

impl Trace {
    /// Parses CSV text.
    ///
    /// # Errors
    ///
    /// A bad header, a malformed row (naming line, column and value), or no row at all.
    pub fn parse(text: &str, origin: &str) -> Result<Trace, TraceError> {
        let mut lines = text.lines().enumerate();
        let header = loop {
            match lines.next() {
                Some((_, l)) if l.trim().is_empty() => continue,
                Some((_, l)) => break l.trim(),
                None => {
                    return Err(TraceError::Empty {
                        origin: origin.into(),
                    });
                }
            }
        };
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        if cols != HEADER {
            return Err(TraceError::Header {
                origin: origin.into(),
                found: header.into(),
            });
        }
        let mut jobs = Vec::new();
        for (i, line) in lines {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let err = |message: String| TraceError::Row {
                origin: origin.into(),
                line: line_no,
                message,
            };
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() != 6 {
                return Err(err(format!("expected 6 columns, found {}", f.len())));
            }
            let submitted = chrono::DateTime::parse_from_rfc3339(f[0])
                .map_err(|e| err(format!("submitted_at `{}` is not RFC 3339: {e}", f[0])))?
                .with_timezone(&chrono::Utc);
            let duration_s = f[1].parse::<u32>().map_err(|_| {
                err(format!(
                    "duration_s `{}` is not a whole number of seconds",
                    f[1]
                ))
            })?;
            let tags = f[2]
                .split(';')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect();
            let pipeline = f[4]
                .parse::<u64>()
                .map_err(|_| err(format!("pipeline `{}` is not a number", f[4])))?;
            let stage = f[5]
                .parse::<u32>()
                .map_err(|_| err(format!("stage `{}` is not a number", f[5])))?;
            jobs.push(TraceJob {
                submitted,
                duration_s,
                tags,
                project: f[3].to_string(),
                pipeline,
                stage,
            });
        }
        if jobs.is_empty() {
            return Err(TraceError::Empty {
                origin: origin.into(),
            });
        }
        jobs.sort_by_key(|j| j.submitted);
        Ok(Trace {
            name: origin.to_string(),
            jobs,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_sorts_by_submission() {
        let t = Trace::parse(
            "submitted_at,duration_s,tags,project,pipeline,stage\n\
             2026-11-02T00:10:05Z,60,docker;privileged,a,1,0\n\
             2026-11-02T00:10:01Z,681,docker,docs,1,0\n",
            "t.csv",
        )
        .unwrap();
        assert_eq!(t.jobs.len(), 2);
        assert_eq!(t.jobs[0].duration_s, 681);
        assert_eq!(t.jobs[1].tags.len(), 2);
    }

    #[test]
    fn bad_duration_names_line_and_value() {
        let e = Trace::parse(
            "submitted_at,duration_s,tags,project,pipeline,stage\n\
             2026-11-02T00:10:01Z,abc,docker,docs,1,0\n",
            "t.csv",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv:2: duration_s `abc` is not a whole number of seconds"
        );
    }

    #[test]
    fn wrong_header_is_rejected() {
        let e = Trace::parse("a,b\n", "t.csv").unwrap_err();
        assert!(e.to_string().contains("expected header"), "{e}");
    }

    #[test]
    fn header_only_is_empty() {
        let e = Trace::parse(
            "submitted_at,duration_s,tags,project,pipeline,stage\n",
            "t.csv",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "t.csv: the trace holds no job");
    }
}
