//! Cron schedules for policy periods: parsing, "is this instant inside", and "when does
//! that change next".
//!
//! Expressions are gitlab-runner's 7-field `sec min hour dom month dow year` or 5-field
//! unix cron `min hour dom month dow` (normalised to `* min hour dom month dow *`, so a
//! 5-field expression covers whole minutes). Numeric day-of-week uses gitlab-runner's
//! meaning (0 and 7 = Sunday) and is translated to the Quartz numbering of the `cron`
//! crate here; when both day-of-month and day-of-week are restricted, a day matches if
//! either matches (unix cron and gitlab-runner's `cronexpr`).
//!
//! A schedule describes a set of local wall-clock seconds. Mapping instants onto it across
//! DST changes follows the rule in `docs/adr/0002-schedules.md`:
//! * spring forward (local time jumps ahead by `d`): during the first `d` after the change
//!   an instant stands for both its real wall time and the skipped wall time (the old
//!   offset continued); if a match of the real time comes before a match of the skipped
//!   time inside that interval, the span between them is active too, so no wall-clock
//!   interval is split in two;
//! * fall back (local time jumps back by `d`): during the second pass of the repeated
//!   wall times the state of the last second before the change is held.
//!
//! Every field is checked here, with our own messages and bounds (sec 0-59, min 0-59,
//! hour 0-23, day-of-month 1-31, month 1-12 or `jan`-`dec`, day-of-week 0-7 or
//! `sun`-`sat`, year 1970-2100), before the `cron` crate sees it: its messages span
//! several lines and state some bounds wrongly ("Hours must be less than 23").
//!
//! This module reads no clock. An expression that can never match at all (February
//! 30th) is an error; one whose matches all lie before a given instant (a year field in
//! the past) parses, and [`Schedule::can_match_from`] tells the caller, which warns:
//! such a schedule is simply never active again.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use cron::TimeUnitSpec;

/// The last year the `cron` crate can represent.
const MAX_YEAR: i32 = 2100;
/// All sixty seconds or minutes.
const ALL_60: u64 = (1 << 60) - 1;
/// All twenty-four hours.
const ALL_24: u64 = (1 << 24) - 1;
/// How far back [`last_transition`] looks for a zone offset change.
const LOOKBACK_SECS: i64 = 48 * 3600;
/// Step of the forward scan for offset changes; zones never change twice within a day.
const SCAN_STEP_SECS: i64 = 24 * 3600;

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Neither 5 nor 7 whitespace-separated fields.
    #[error(
        "expected 7 fields `sec min hour dom month dow year` or 5 fields `min hour dom month dow`, found {found}"
    )]
    FieldCount {
        /// How many fields the expression had.
        found: usize,
    },
    /// Six fields: gitlab-runner reads them as `min … year`, Quartz as `sec … dow`.
    #[error(
        "6 fields are ambiguous (gitlab-runner reads `min hour dom month dow year`, Quartz reads `sec min hour dom month dow`); write 7 fields `sec min hour dom month dow year` or 5 unix fields"
    )]
    SixFields,
    /// `@daily` and friends name instants, not windows.
    #[error("`{shorthand}` names an instant, not a window; write the fields out")]
    Shorthand {
        /// The shorthand that was given.
        shorthand: String,
    },
    /// One field could not be read or is out of its range.
    #[error("{field} field `{text}`: {reason}")]
    Field {
        /// The field's name (`hour`, `day-of-week`, ...).
        field: &'static str,
        /// The field as written.
        text: String,
        /// Byte offset of the field in the expression, for the column in messages.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The `cron` crate refused an expression our own checks let through (its message,
    /// on one line).
    #[error("not understood: {reason}")]
    Syntax {
        /// The parser's explanation.
        reason: String,
    },
    /// No date from 1970 to 2100 satisfies the date fields.
    #[error(
        "can never match: no date from 1970 to 2100 satisfies its day-of-month, month, day-of-week and year fields"
    )]
    NeverMatches,
}

// === impl ScheduleError ===

impl ScheduleError {
    /// Byte offset in the expression of the field at fault, if one is.
    pub fn offset(&self) -> Option<usize> {
        match self {
            ScheduleError::Field { offset, .. } => Some(*offset),
            _ => None,
        }
    }
}

/// A parsed cron window: the source text plus the parsed `cron` schedules.
#[derive(Clone)]
pub struct Schedule {
    /// The expression as written in the configuration, for messages and `plan` output.
    source: String,
    /// One schedule, or two (day-of-month only, day-of-week only) when both day fields
    /// are restricted and a day matches if either does.
    crons: Vec<cron::Schedule>,
    /// Seconds of the minute in the window (bit n = second n).
    seconds: u64,
    /// Minutes of the hour in the window.
    minutes: u64,
    /// Hours of the day in the window.
    hours: u64,
}

/// Which rule maps an instant to wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// Ordinary time: wall = instant + offset.
    Normal {
        /// Zone offset in seconds.
        offset: i64,
    },
    /// The first `len` seconds after a spring-forward change at `start`.
    Gap {
        /// Instant of the change (unix seconds).
        start: i64,
        /// Length of the skipped wall-clock interval in seconds.
        len: i64,
        /// Offset before the change.
        before: i64,
    },
    /// The second pass of the wall times repeated by a fall-back change at `start`.
    Overlap {
        /// Instant of the change (unix seconds).
        start: i64,
        /// Length of the repeated wall-clock interval in seconds.
        len: i64,
        /// Offset before the change.
        before: i64,
    },
}

// === impl Schedule ===

impl Schedule {
    /// Parses a 7-field gitlab-runner or 5-field unix cron expression. Pure: whether it
    /// can still match is [`Schedule::can_match_from`]'s question.
    ///
    /// # Errors
    ///
    /// [`ScheduleError`] for a wrong field count, a 6-field expression, a field that
    /// cannot be read or is out of range (naming the field and its offset), or an
    /// expression that matches no date from 1970 to 2100.
    pub fn parse(expr: &str) -> Result<Schedule, ScheduleError> {
        let tokens = tokens(expr);
        let fields: Vec<(&str, Option<usize>)> = match tokens.as_slice() {
            [(one, _)] if one.starts_with('@') => {
                return Err(ScheduleError::Shorthand {
                    shorthand: (*one).to_owned(),
                });
            }
            [_, _, _, _, _] => std::iter::once(("*", None))
                .chain(tokens.iter().map(|&(t, o)| (t, Some(o))))
                .chain(std::iter::once(("*", None)))
                .collect(),
            [_, _, _, _, _, _, _] => tokens.iter().map(|&(t, o)| (t, Some(o))).collect(),
            [_, _, _, _, _, _] => return Err(ScheduleError::SixFields),
            other => return Err(ScheduleError::FieldCount { found: other.len() }),
        };
        for (spec, &(text, offset)) in FIELDS.iter().zip(&fields) {
            if let Some(spec) = spec {
                check_field(spec, text).map_err(|reason| ScheduleError::Field {
                    field: spec.name,
                    text: text.to_owned(),
                    offset: offset.unwrap_or(0),
                    reason,
                })?;
            }
        }
        let [sec, min, hour, dom, month, dow, year] = [0, 1, 2, 3, 4, 5, 6].map(|i| fields[i].0);
        let dom = if dom == "?" { "*" } else { dom };
        let dow_quartz = translate_dow(dow).map_err(|reason| ScheduleError::Field {
            field: "day-of-week",
            text: dow.to_owned(),
            offset: fields[5].1.unwrap_or(0),
            reason,
        })?;
        let mut sources = Vec::new();
        match (dom != "*", dow_quartz) {
            (true, Some(q)) => {
                sources.push(format!("{sec} {min} {hour} {dom} {month} * {year}"));
                sources.push(format!("{sec} {min} {hour} * {month} {q} {year}"));
            }
            (_, Some(q)) => sources.push(format!("{sec} {min} {hour} {dom} {month} {q} {year}")),
            (_, None) => sources.push(format!("{sec} {min} {hour} {dom} {month} * {year}")),
        }
        let crons = sources
            .iter()
            .map(|s| {
                cron::Schedule::from_str(s).map_err(|e| ScheduleError::Syntax {
                    reason: one_line_cron_error(&e.to_string()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let first = &crons[0];
        let seconds = first.seconds().iter().fold(0u64, |m, s| m | (1 << s));
        let minutes = first.minutes().iter().fold(0u64, |m, s| m | (1 << s));
        let hours = first.hours().iter().fold(0u64, |m, s| m | (1 << s));
        let schedule = Schedule {
            source: expr.to_owned(),
            crons,
            seconds,
            minutes,
            hours,
        };
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
        if schedule.first_date_from(epoch).is_none() {
            return Err(ScheduleError::NeverMatches);
        }
        Ok(schedule)
    }

    /// Whether the schedule matches on some date from `now` on (in any zone, so from
    /// `now` in UTC-12). `false` means it is never active again: a year field that lies
    /// in the past, or a leap day with no leap year left before 2100.
    pub fn can_match_from(&self, now: DateTime<Utc>) -> bool {
        let from = (now - chrono::Duration::hours(14)).date_naive();
        self.first_date_from(from).is_some()
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether instant `t` lies inside the window, in zone `tz`: `t` is converted to the
    /// zone, truncated to the second and checked with `cron`'s `includes()`, with the DST
    /// rule of the module documentation in the hour(s) after a change.
    pub fn matches(&self, t: DateTime<Utc>, tz: Tz) -> bool {
        self.state(tz, t.timestamp())
    }

    /// The first instant strictly after `t` and not after `until` at which
    /// [`Schedule::matches`] changes value, or `None`.
    pub fn next_change(
        &self,
        t: DateTime<Utc>,
        tz: Tz,
        until: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        self.next_change_secs(tz, t.timestamp(), until.timestamp())
            .and_then(|s| DateTime::from_timestamp(s, 0))
    }

    /// Whether the wall-clock second `w` is in the window (the `cron` crate's `includes()`).
    fn wall_ok(&self, w: NaiveDateTime) -> bool {
        let as_utc = Utc.from_utc_datetime(&w);
        self.crons.iter().any(|c| c.includes(as_utc))
    }

    /// Whether the date fields accept date `d`.
    fn date_ok(&self, d: NaiveDate) -> bool {
        let Ok(year) = u32::try_from(d.year()) else {
            return false;
        };
        self.crons.iter().any(|c| {
            c.years().includes(year)
                && c.months().includes(d.month())
                && c.days_of_month().includes(d.day())
                && c.days_of_week().includes(d.weekday().number_from_sunday())
        })
    }

    /// The first date on or after `from` (up to 2100) whose date fields match.
    fn first_date_from(&self, from: NaiveDate) -> Option<NaiveDate> {
        let mut d = from;
        while d.year() <= MAX_YEAR {
            let Ok(year) = u32::try_from(d.year()) else {
                return None;
            };
            if !self.crons.iter().any(|c| c.years().includes(year)) {
                d = NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)?;
                continue;
            }
            if !self.crons.iter().any(|c| c.months().includes(d.month())) {
                d = first_of_next_month(d)?;
                continue;
            }
            if self.date_ok(d) {
                return Some(d);
            }
            d = d.succ_opt()?;
        }
        None
    }

    /// First wall second `>= w` and `<= limit` inside the window.
    fn next_true(&self, mut w: NaiveDateTime, limit: NaiveDateTime) -> Option<NaiveDateTime> {
        while w <= limit {
            let d = w.date();
            if !self.date_ok(d) {
                w = d.succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            let (h, m, s) = (w.hour(), w.minute(), w.second());
            if !bit(self.hours, h) {
                w = match next_bit(self.hours, h + 1, 24, true) {
                    Some(h2) => d.and_hms_opt(h2, 0, 0)?,
                    None => d.succ_opt()?.and_hms_opt(0, 0, 0)?,
                };
                continue;
            }
            if !bit(self.minutes, m) {
                w = match next_bit(self.minutes, m + 1, 60, true) {
                    Some(m2) => d.and_hms_opt(h, m2, 0)?,
                    None => d.and_hms_opt(h, 0, 0)? + chrono::Duration::hours(1),
                };
                continue;
            }
            if bit(self.seconds, s) {
                return Some(w);
            }
            match next_bit(self.seconds, s + 1, 60, true) {
                Some(s2) => return Some(d.and_hms_opt(h, m, s2)?).filter(|x| *x <= limit),
                None => w = d.and_hms_opt(h, m, 0)? + chrono::Duration::minutes(1),
            }
        }
        None
    }

    /// First wall second `>= w` and `<= limit` outside the window.
    fn next_false(&self, mut w: NaiveDateTime, limit: NaiveDateTime) -> Option<NaiveDateTime> {
        while w <= limit {
            if !self.wall_ok(w) {
                return Some(w);
            }
            let d = w.date();
            let (h, m, s) = (w.hour(), w.minute(), w.second());
            if self.seconds != ALL_60 {
                match next_bit(self.seconds, s + 1, 60, false) {
                    Some(s2) => return Some(d.and_hms_opt(h, m, s2)?).filter(|x| *x <= limit),
                    None => w = d.and_hms_opt(h, m, 0)? + chrono::Duration::minutes(1),
                }
            } else if self.minutes != ALL_60 {
                match next_bit(self.minutes, m + 1, 60, false) {
                    Some(m2) => return Some(d.and_hms_opt(h, m2, 0)?).filter(|x| *x <= limit),
                    None => w = d.and_hms_opt(h, 0, 0)? + chrono::Duration::hours(1),
                }
            } else if self.hours != ALL_24 {
                match next_bit(self.hours, h + 1, 24, false) {
                    Some(h2) => return Some(d.and_hms_opt(h2, 0, 0)?).filter(|x| *x <= limit),
                    None => w = d.succ_opt()?.and_hms_opt(0, 0, 0)?,
                }
            } else {
                w = d.succ_opt()?.and_hms_opt(0, 0, 0)?;
            }
        }
        None
    }

    /// The runs of matching wall seconds in `[from, from + len)`, as offsets from `from`.
    fn runs(&self, from: NaiveDateTime, len: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        if len <= 0 {
            return out;
        }
        let last = from + chrono::Duration::seconds(len - 1);
        let mut x = from;
        while let Some(start) = self.next_true(x, last) {
            let stop = self
                .next_false(start, last)
                .unwrap_or(last + chrono::Duration::seconds(1));
            out.push(((start - from).num_seconds(), (stop - from).num_seconds()));
            if stop > last {
                break;
            }
            x = stop;
        }
        out
    }

    /// Active intervals (offsets from the change) in the first `len` seconds after a
    /// spring-forward change: skipped wall times ∪ real wall times ∪ the span from the
    /// first real match to the last skipped match.
    fn gap_profile(&self, start: i64, len: i64, before: i64) -> Vec<(i64, i64)> {
        let g0 = wall(start + before);
        let g1 = g0 + chrono::Duration::seconds(len);
        let old = self.runs(g0, len);
        let new = self.runs(g1, len);
        let mut all: Vec<(i64, i64)> = old.iter().chain(new.iter()).copied().collect();
        if let (Some(&(first_new, _)), Some(&(_, last_old_end))) = (new.first(), old.last()) {
            if first_new < last_old_end {
                all.push((first_new, last_old_end));
            }
        }
        all.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        for (a, b) in all {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        merged
    }

    /// Whether unix second `t` is inside the window in `tz`.
    fn state(&self, tz: Tz, t: i64) -> bool {
        match segment(tz, t) {
            Segment::Normal { offset } => self.wall_ok(wall(t + offset)),
            Segment::Gap { start, len, before } => {
                let s = t - start;
                self.gap_profile(start, len, before)
                    .iter()
                    .any(|&(a, b)| a <= s && s < b)
            }
            Segment::Overlap { start, before, .. } => self.wall_ok(wall(start - 1 + before)),
        }
    }

    /// First unix second in `(t, until]` whose state differs from the state at `t`.
    fn next_change_secs(&self, tz: Tz, t: i64, until: i64) -> Option<i64> {
        let s0 = self.state(tz, t);
        let mut x = t + 1;
        while x <= until {
            match segment(tz, x) {
                Segment::Normal { offset } => {
                    let w = wall(x + offset);
                    let limit = wall(until + offset);
                    let found = if s0 {
                        self.next_false(w, limit)
                    } else {
                        self.next_true(w, limit)
                    };
                    let cand = found.map(|c| c.and_utc().timestamp() - offset);
                    match next_offset_change(tz, x, cand.unwrap_or(until)) {
                        Some(change) => x = change,
                        None => return cand,
                    }
                }
                Segment::Gap { start, len, before } => {
                    let profile = self.gap_profile(start, len, before);
                    let s = x - start;
                    let inside = profile.iter().any(|&(a, b)| a <= s && s < b);
                    if inside != s0 {
                        return Some(x);
                    }
                    let next = profile
                        .iter()
                        .flat_map(|&(a, b)| [a, b])
                        .filter(|&b| b > s && b < len)
                        .min();
                    match next {
                        Some(b) => return Some(start + b).filter(|y| *y <= until),
                        None => x = start + len,
                    }
                }
                Segment::Overlap { start, len, before } => {
                    if self.wall_ok(wall(start - 1 + before)) != s0 {
                        return Some(x);
                    }
                    x = start + len;
                }
            }
        }
        None
    }
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.source).finish()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Schedule {}

// === helpers ===

/// Whether bit `n` of `mask` is set.
fn bit(mask: u64, n: u32) -> bool {
    n < 64 && mask & (1 << n) != 0
}

/// The smallest `i` in `from..width` whose bit equals `set`.
fn next_bit(mask: u64, from: u32, width: u32, set: bool) -> Option<u32> {
    (from..width).find(|&i| bit(mask, i) == set)
}

/// The first day of the month after `d`'s.
fn first_of_next_month(d: NaiveDate) -> Option<NaiveDate> {
    if d.month() == 12 {
        NaiveDate::from_ymd_opt(d.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(d.year(), d.month() + 1, 1)
    }
}

/// Unix seconds read as a naive wall-clock time (the caller has added the offset).
fn wall(secs: i64) -> NaiveDateTime {
    DateTime::from_timestamp(secs, 0)
        .map(|d| d.naive_utc())
        .unwrap_or(NaiveDateTime::MAX)
}

/// The UTC offset of `tz` at unix second `t`, in seconds.
pub(crate) fn offset_at(tz: Tz, t: i64) -> i64 {
    let utc = wall(t);
    i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// The latest offset change at or before `t` within [`LOOKBACK_SECS`]:
/// `(instant, offset before, offset after)`.
fn last_transition(tz: Tz, t: i64) -> Option<(i64, i64, i64)> {
    let after = offset_at(tz, t);
    let mut lo = t - LOOKBACK_SECS;
    let before = offset_at(tz, lo);
    if before == after {
        return None;
    }
    let mut hi = t;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if offset_at(tz, mid) == after {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some((hi, offset_at(tz, lo), after))
}

/// The first unix second in `(x, end]` whose offset differs from the offset at `x`.
fn next_offset_change(tz: Tz, x: i64, end: i64) -> Option<i64> {
    let o0 = offset_at(tz, x);
    let mut lo = x;
    while lo < end {
        let mut hi = (lo + SCAN_STEP_SECS).min(end);
        if offset_at(tz, hi) != o0 {
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(tz, mid) == o0 {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            return Some(hi);
        }
        lo = hi;
    }
    None
}

/// Which DST rule applies at unix second `t`.
fn segment(tz: Tz, t: i64) -> Segment {
    if let Some((start, before, after)) = last_transition(tz, t) {
        let len = (after - before).abs();
        if t < start + len {
            return if after > before {
                Segment::Gap { start, len, before }
            } else {
                Segment::Overlap { start, len, before }
            };
        }
    }
    Segment::Normal {
        offset: offset_at(tz, t),
    }
}

/// Translates a gitlab-runner day-of-week field (0 and 7 = Sunday, names) into the `cron`
/// crate's Quartz numbering (1 = Sunday); `None` when the field is unrestricted.
fn translate_dow(field: &str) -> Result<Option<String>, String> {
    if field == "*" || field == "?" {
        return Ok(None);
    }
    let err = |reason: String| reason;
    let mut days = [false; 7];
    for item in field.split(',') {
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| err(format!("step `{s}` is not a number")))?;
                if !(1..=7).contains(&step) {
                    return Err(err(format!("step {step} must be between 1 and 7")));
                }
                (b, Some(step))
            }
            None => (item, None),
        };
        let (lo, hi) = if base == "*" {
            (0, 6)
        } else if let Some((a, b)) = base.split_once('-') {
            let (a, b) = (dow_value(a).map_err(&err)?, dow_value(b).map_err(&err)?);
            if a > b {
                return Err(err(format!(
                    "range `{base}` runs backwards; list both parts instead (e.g. `sat,sun`)"
                )));
            }
            (a, b)
        } else {
            let v = dow_value(base).map_err(&err)?;
            if step.is_some() {
                (v, 6.max(v))
            } else {
                (v, v)
            }
        };
        let step = step.unwrap_or(1) as usize;
        for v in (lo..=hi).step_by(step) {
            days[(v % 7) as usize] = true;
        }
    }
    let quartz: Vec<String> = days
        .iter()
        .enumerate()
        .filter(|(_, on)| **on)
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    Ok(Some(quartz.join(",")))
}

/// A field of the 7-field form as checked by [`check_field`].
struct FieldSpec {
    /// Name in messages.
    name: &'static str,
    /// Smallest value.
    min: u32,
    /// Largest value.
    max: u32,
    /// Names accepted for the values `min..` (months), lowercase three-letter.
    names: &'static [&'static str],
    /// Whether `?` stands for "any" (day-of-month).
    question: bool,
}

/// The seven fields in order; day-of-week (`None`) has its own translation.
const FIELDS: [Option<FieldSpec>; 7] = [
    Some(FieldSpec {
        name: "second",
        min: 0,
        max: 59,
        names: &[],
        question: false,
    }),
    Some(FieldSpec {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
        question: false,
    }),
    Some(FieldSpec {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
        question: false,
    }),
    Some(FieldSpec {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        question: true,
    }),
    Some(FieldSpec {
        name: "month",
        min: 1,
        max: 12,
        names: &[
            "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
        ],
        question: false,
    }),
    None,
    Some(FieldSpec {
        name: "year",
        min: 1970,
        max: MAX_YEAR as u32,
        names: &[],
        question: false,
    }),
];

/// The whitespace-separated words of `expr` with their byte offsets.
fn tokens(expr: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in expr.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((&expr[s..i], s));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((&expr[s..], s));
    }
    out
}

/// Checks one field: `*`, or a comma list of `v`, `a-b`, `*/n`, `v/n`, `a-b/n`, with
/// every value in range and every step from 1 to the field's width.
fn check_field(spec: &FieldSpec, text: &str) -> Result<(), String> {
    if text == "*" || (spec.question && text == "?") {
        return Ok(());
    }
    let width = spec.max - spec.min + 1;
    let value = |v: &str| -> Result<u32, String> {
        let lower = v.to_ascii_lowercase();
        let n = match v.parse::<u32>() {
            Ok(n) => n,
            Err(_) => match spec.names.iter().position(|n| *n == lower) {
                Some(i) => spec.min + u32::try_from(i).unwrap_or(0),
                None if v.is_empty() => return Err("a value is missing".to_owned()),
                None if spec.names.is_empty() => {
                    return Err(format!(
                        "`{v}` is not a number (`L`, `W`, `#` and names are not supported here)"
                    ));
                }
                None => {
                    return Err(format!(
                        "`{v}` is not a number or a name ({}-{})",
                        spec.names[0],
                        spec.names[spec.names.len() - 1]
                    ));
                }
            },
        };
        if (spec.min..=spec.max).contains(&n) {
            Ok(n)
        } else {
            Err(format!(
                "{n} is out of range {}-{} (both included)",
                spec.min, spec.max
            ))
        }
    };
    for item in text.split(',') {
        if item.is_empty() {
            return Err("empty entry in the list".to_owned());
        }
        let (base, step) = match item.split_once('/') {
            Some((b, s)) => (b, Some(s)),
            None => (item, None),
        };
        if let Some(step) = step {
            match step.parse::<u32>() {
                Ok(n) if (1..=width).contains(&n) => {}
                Ok(n) => return Err(format!("step {n} is out of range 1-{width}")),
                Err(_) => return Err(format!("step `{step}` is not a number")),
            }
        }
        if base == "*" {
            continue;
        }
        match base.split_once('-') {
            Some((a, b)) => {
                let (x, y) = (value(a)?, value(b)?);
                if x > y {
                    return Err(format!(
                        "range `{base}` runs backwards; list both parts instead"
                    ));
                }
            }
            None => {
                value(base)?;
            }
        }
    }
    Ok(())
}

/// The `cron` crate's message without the echoed expression and caret lines.
fn one_line_cron_error(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .skip(2)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "the cron parser refused it".to_owned()
    } else {
        lines.join(" ")
    }
}

/// One day-of-week value: 0–7 (0 and 7 = Sunday) or an English name or abbreviation.
fn dow_value(s: &str) -> Result<u32, String> {
    const NAMES: [(&str, &str); 7] = [
        ("sun", "sunday"),
        ("mon", "monday"),
        ("tue", "tuesday"),
        ("wed", "wednesday"),
        ("thu", "thursday"),
        ("fri", "friday"),
        ("sat", "saturday"),
    ];
    if let Ok(n) = s.parse::<u32>() {
        return if n <= 7 {
            Ok(n)
        } else {
            Err(format!("{n} is out of range 0-7 (0 and 7 are Sunday)"))
        };
    }
    let lower = s.to_ascii_lowercase();
    NAMES
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .and_then(|i| u32::try_from(i).ok())
        .ok_or_else(|| {
            if s.contains('#') || s.to_ascii_lowercase().ends_with('l') {
                format!("`{s}`: `L` and `#` are not supported")
            } else {
                format!("`{s}` is not a day (use 0-7 or sun..sat)")
            }
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono_tz::{America::New_York, Australia::Lord_Howe, Europe::Berlin, UTC};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn sched(expr: &str) -> Schedule {
        Schedule::parse(expr).unwrap()
    }

    /// All instants (unix seconds) in `[from, to)` where the state flips, by brute force.
    fn flips(s: &Schedule, tz: Tz, from: i64, to: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut prev = s.state(tz, from);
        for t in from + 1..to {
            let cur = s.state(tz, t);
            if cur != prev {
                out.push(t);
            }
            prev = cur;
        }
        out
    }

    #[test]
    fn seven_field_reference_expressions_parse() {
        assert_eq!(
            sched("* * 0-8,22-23 * * mon-fri *").source(),
            "* * 0-8,22-23 * * mon-fri *"
        );
        sched("* * * * * sat,sun *");
    }

    #[test]
    fn six_fields_are_rejected_as_ambiguous() {
        assert_eq!(
            Schedule::parse("* * * * * *"),
            Err(ScheduleError::SixFields)
        );
    }

    #[test]
    fn wrong_field_counts_are_rejected() {
        assert_eq!(
            Schedule::parse("* * *"),
            Err(ScheduleError::FieldCount { found: 3 })
        );
        assert!(matches!(
            Schedule::parse("@daily"),
            Err(ScheduleError::Shorthand { .. })
        ));
    }

    #[test]
    fn five_field_expression_covers_the_whole_minute() {
        let s = sched("30 9 * * *");
        assert!(s.matches(at("2025-03-04T09:30:00Z"), UTC));
        assert!(s.matches(at("2025-03-04T09:30:59Z"), UTC));
        assert!(!s.matches(at("2025-03-04T09:31:00Z"), UTC));
    }

    #[test]
    fn numeric_day_of_week_zero_and_seven_are_sunday() {
        let sunday = at("2025-03-02T12:00:00Z");
        let monday = at("2025-03-03T12:00:00Z");
        for expr in ["* * * * * 0 *", "* * * * * 7 *", "* * * * * sun *"] {
            let s = sched(expr);
            assert!(s.matches(sunday, UTC), "{expr}");
            assert!(!s.matches(monday, UTC), "{expr}");
        }
    }

    #[test]
    fn numeric_day_of_week_range_one_to_five_is_monday_to_friday() {
        let s = sched("* * * * * 1-5 *");
        let names = sched("* * * * * mon-fri *");
        for day in 1..=14 {
            let t = at(&format!("2025-03-{day:02}T12:00:00Z"));
            assert_eq!(s.matches(t, UTC), names.matches(t, UTC), "day {day}");
        }
        assert!(!s.matches(at("2025-03-01T12:00:00Z"), UTC)); // Saturday
        assert!(s.matches(at("2025-03-03T12:00:00Z"), UTC)); // Monday
    }

    #[test]
    fn day_of_week_range_up_to_seven_includes_sunday() {
        let s = sched("* * * * * 5-7 *");
        assert!(s.matches(at("2025-03-02T12:00:00Z"), UTC)); // Sunday
        assert!(s.matches(at("2025-02-28T12:00:00Z"), UTC)); // Friday
        assert!(!s.matches(at("2025-03-03T12:00:00Z"), UTC)); // Monday
    }

    #[test]
    fn day_of_week_step_counts_from_the_gitlab_numbering() {
        // 1/2 = Monday, Wednesday, Friday (Quartz would read Sunday, Tuesday, Thursday).
        let s = sched("* * * * * 1/2 *");
        assert!(s.matches(at("2025-03-03T12:00:00Z"), UTC)); // Monday
        assert!(s.matches(at("2025-03-05T12:00:00Z"), UTC)); // Wednesday
        assert!(!s.matches(at("2025-03-04T12:00:00Z"), UTC)); // Tuesday
    }

    #[test]
    fn backwards_day_of_week_range_is_rejected() {
        assert!(matches!(
            Schedule::parse("* * * * * sat-sun *"),
            Err(ScheduleError::Field {
                field: "day-of-week",
                ..
            })
        ));
        assert!(matches!(
            Schedule::parse("* * * * * 8 *"),
            Err(ScheduleError::Field {
                field: "day-of-week",
                ..
            })
        ));
    }

    #[test]
    fn restricted_day_of_month_and_week_match_either() {
        // The 1st of the month or any Monday, as in unix cron and cronexpr.
        let s = sched("* * * 1 * mon *");
        assert!(s.matches(at("2025-03-01T12:00:00Z"), UTC)); // Saturday the 1st
        assert!(s.matches(at("2025-03-03T12:00:00Z"), UTC)); // Monday the 3rd
        assert!(!s.matches(at("2025-03-04T12:00:00Z"), UTC));
    }

    #[test]
    fn impossible_dates_are_rejected() {
        for expr in ["* * * 31 2 * *", "* * * 30 2 * *", "* * * 31 4 * *"] {
            assert_eq!(
                Schedule::parse(expr),
                Err(ScheduleError::NeverMatches),
                "{expr}"
            );
        }
    }

    #[test]
    fn february_29_is_accepted_while_a_leap_year_remains() {
        sched("* * * 29 2 * *");
        assert_eq!(
            Schedule::parse("* * * 29 2 * 2025-2027"),
            Err(ScheduleError::NeverMatches)
        );
    }

    // Regression, issue 11 item 9: a year field in the past used to be a parse error,
    // so a file that validated in 2025 stopped the service from starting in 2026.
    #[test]
    fn schedule_restricted_to_a_past_year_parses_and_never_matches_again() {
        let s = Schedule::parse("* * * * * * 2025").unwrap();
        assert!(s.can_match_from(at("2025-12-31T12:00:00Z")));
        assert!(s.matches(at("2025-06-01T12:00:00Z"), UTC));
        let after = at("2026-01-02T00:00:00Z");
        assert!(!s.can_match_from(after));
        assert!(!s.matches(after, UTC));
        assert_eq!(s.next_change(after, UTC, at("2027-01-01T00:00:00Z")), None);
        // A leap day whose last leap year (2096) has passed: the same.
        let leap = Schedule::parse("* * * 29 2 * *").unwrap();
        assert!(!leap.can_match_from(at("2097-01-01T00:00:00Z")));
    }

    // Regression, issue 11 item 9: the cron crate's text spanned three lines and said
    // "Hours must be less than 23" for a bound that includes 23.
    #[test]
    fn field_errors_are_one_line_with_our_own_bounds() {
        for (expr, want) in [
            (
                "* * 25 * * * *",
                "hour field `25`: 25 is out of range 0-23 (both included)",
            ),
            (
                "* 60 * * * * *",
                "minute field `60`: 60 is out of range 0-59 (both included)",
            ),
            (
                "* * * 0 * * *",
                "day-of-month field `0`: 0 is out of range 1-31 (both included)",
            ),
            (
                "* * * * 13 * *",
                "month field `13`: 13 is out of range 1-12 (both included)",
            ),
            (
                "* * * * foo * *",
                "month field `foo`: `foo` is not a number or a name (jan-dec)",
            ),
            (
                "* * * * * * 1960",
                "year field `1960`: 1960 is out of range 1970-2100 (both included)",
            ),
            (
                "*/90 * * * * * *",
                "second field `*/90`: step 90 is out of range 1-60",
            ),
            (
                "* * 1,,2 * * * *",
                "hour field `1,,2`: empty entry in the list",
            ),
            (
                "* * 5-3 * * * *",
                "hour field `5-3`: range `5-3` runs backwards; list both parts instead",
            ),
            (
                "0 25 * * *",
                "hour field `25`: 25 is out of range 0-23 (both included)",
            ),
        ] {
            let e = Schedule::parse(expr).unwrap_err();
            assert_eq!(e.to_string(), want, "{expr}");
            assert!(!e.to_string().contains('\n'));
        }
        // Offsets point at the field, for the column in configuration errors.
        assert_eq!(
            Schedule::parse("* * 25 * * * *").unwrap_err().offset(),
            Some(4)
        );
        assert_eq!(
            Schedule::parse("0  25 * * *").unwrap_err().offset(),
            Some(3)
        );
        assert_eq!(
            Schedule::parse("* * * * * 9 *").unwrap_err().offset(),
            Some(10)
        );
    }

    #[test]
    fn accepted_field_forms_still_parse() {
        for expr in [
            "0-59/5 */15 0-8,22-23 ? jan-mar,dec mon-fri 2025-2100",
            "30 9 1,15 * *",
            "* * * * * * 2030/2",
        ] {
            Schedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        }
    }

    #[test]
    fn bad_field_syntax_is_rejected() {
        assert!(matches!(
            Schedule::parse("* * 25 * * * *"),
            Err(ScheduleError::Field { field: "hour", .. })
        ));
        assert!(matches!(
            Schedule::parse("* * * L * * *"),
            Err(ScheduleError::Field {
                field: "day-of-month",
                ..
            })
        ));
    }

    #[test]
    fn reference_window_follows_berlin_wall_clock() {
        let s = sched("* * 0-8,22-23 * * mon-fri *");
        // Tuesday 2025-01-07, CET = UTC+1.
        assert!(s.matches(at("2025-01-07T07:59:59Z"), Berlin)); // 08:59:59
        assert!(!s.matches(at("2025-01-07T08:00:00Z"), Berlin)); // 09:00
        assert!(s.matches(at("2025-01-07T21:00:00Z"), Berlin)); // 22:00
    }

    #[test]
    fn window_inside_skipped_hour_is_active_for_the_hour_after_spring_forward() {
        // Berlin 2025-03-30: 02:00 CET -> 03:00 CEST at 01:00 UTC.
        let s = sched("* * 2 * * * *");
        let from = at("2025-03-29T22:00:00Z").timestamp();
        let to = at("2025-03-30T04:00:00Z").timestamp();
        assert_eq!(
            flips(&s, Berlin, from, to),
            vec![
                at("2025-03-30T01:00:00Z").timestamp(),
                at("2025-03-30T02:00:00Z").timestamp()
            ]
        );
    }

    #[test]
    fn continuous_window_spanning_spring_forward_has_one_entry_and_one_exit() {
        let s = sched("* * 0-8 * * * *");
        let from = at("2025-03-29T20:00:00Z").timestamp();
        let to = at("2025-03-30T12:00:00Z").timestamp();
        assert_eq!(
            flips(&s, Berlin, from, to),
            vec![
                at("2025-03-29T23:00:00Z").timestamp(),
                at("2025-03-30T07:00:00Z").timestamp()
            ]
        );
    }

    #[test]
    fn window_starting_inside_the_gap_and_ending_after_it_is_entered_once() {
        // Wall windows 02:00-02:10, 02:30-03:10 and 03:30-03:59: both halves of the merged
        // hour match, so the span between fills and the hour after the change is one run.
        let s = sched("* 0-10,30-59 2-3 * * * *");
        let from = at("2025-03-30T00:00:00Z").timestamp();
        let to = at("2025-03-30T03:00:00Z").timestamp();
        let f = flips(&s, Berlin, from, to);
        assert_eq!(f.len(), 2, "{f:?}");
    }

    #[test]
    fn window_inside_repeated_hour_is_entered_once_at_fall_back() {
        // Berlin 2025-10-26: 03:00 CEST -> 02:00 CET at 01:00 UTC.
        let s = sched("* 30-59 2 * * * *");
        let from = at("2025-10-25T22:00:00Z").timestamp();
        let to = at("2025-10-26T04:00:00Z").timestamp();
        assert_eq!(
            flips(&s, Berlin, from, to),
            // enters 02:30 CEST, held through the repeated hour, leaves at 03:00 CET
            vec![
                at("2025-10-26T00:30:00Z").timestamp(),
                at("2025-10-26T02:00:00Z").timestamp()
            ]
        );
    }

    #[test]
    fn window_ending_inside_repeated_hour_is_not_reentered() {
        let s = sched("* 0-29 2 * * * *");
        let from = at("2025-10-25T22:00:00Z").timestamp();
        let to = at("2025-10-26T04:00:00Z").timestamp();
        assert_eq!(
            flips(&s, Berlin, from, to),
            vec![
                at("2025-10-26T00:00:00Z").timestamp(),
                at("2025-10-26T00:30:00Z").timestamp()
            ]
        );
    }

    #[test]
    fn lord_howe_half_hour_gap_is_covered() {
        // Lord Howe 2025-10-05: 02:00 (+10:30) -> 02:30 (+11) at 2025-10-04T15:30Z.
        let s = sched("* 0-29 2 * * * *");
        let from = at("2025-10-04T12:00:00Z").timestamp();
        let to = at("2025-10-04T18:00:00Z").timestamp();
        assert_eq!(
            flips(&s, Lord_Howe, from, to),
            vec![
                at("2025-10-04T15:30:00Z").timestamp(),
                at("2025-10-04T16:00:00Z").timestamp()
            ]
        );
    }

    #[test]
    fn next_change_agrees_with_brute_force_around_transitions() {
        let cases = [
            ("* * 2 * * * *", Berlin, "2025-03-29T23:00:00Z"),
            ("* 30-59 2 * * * *", Berlin, "2025-10-25T23:00:00Z"),
            (
                "* * 0-8,22-23 * * mon-fri *",
                New_York,
                "2025-03-08T20:00:00Z",
            ),
            ("0-29 */7 1-3 * * * *", New_York, "2025-11-02T04:00:00Z"),
            ("* 10-40 2 * * * *", Lord_Howe, "2025-10-04T14:00:00Z"),
        ];
        for (expr, tz, start) in cases {
            let s = sched(expr);
            let from = at(start).timestamp();
            let to = from + 5 * 3600;
            let brute = flips(&s, tz, from, to);
            let mut fast = Vec::new();
            let mut x = from;
            while let Some(c) = s.next_change_secs(tz, x, to - 1) {
                fast.push(c);
                x = c;
            }
            assert_eq!(fast, brute, "{expr} in {tz}");
        }
    }
}
