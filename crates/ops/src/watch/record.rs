//! A [`Reconcile`] as one structured log line (JSON), and UTC timestamps.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::{Outcome, Reconcile, Trigger};

/// `time` as RFC 3339 in UTC with milliseconds: `2026-12-02T12:00:00.123Z`.
pub fn rfc3339(time: SystemTime) -> String {
    let d = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

impl Serialize for Reconcile {
    /// `{"time", "level", "msg": "reconcile", "trigger", "file", "outcome",
    /// "duration_s", "maps": [ApplyRecord...], "error", ...}`: level `info`
    /// when applied, `warn` for a bad file, `error` when the maps could not
    /// be written.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("time", &rfc3339(self.at))?;
        let level = match self.outcome {
            Outcome::Applied => "info",
            Outcome::BadFile { .. } | Outcome::Interrupted { .. } => "warn",
            Outcome::Failed { .. } => "error",
        };
        m.serialize_entry("level", level)?;
        m.serialize_entry("msg", "reconcile")?;
        m.serialize_entry("trigger", self.trigger.name())?;
        if let Trigger::MapReplaced {
            map,
            pin,
            old_id,
            new_id,
        } = &self.trigger
        {
            m.serialize_entry("replaced_map", map)?;
            m.serialize_entry("pin", &pin.display().to_string())?;
            m.serialize_entry("old_id", old_id)?;
            m.serialize_entry("new_id", new_id)?;
        }
        m.serialize_entry("file", &self.file.display().to_string())?;
        m.serialize_entry("outcome", self.outcome.name())?;
        m.serialize_entry("duration_s", &self.duration.as_secs_f64())?;
        m.serialize_entry("maps", &self.records)?;
        if let Some(e) = self.outcome.error() {
            m.serialize_entry("error", e)?;
        }
        if let Outcome::BadFile { restored, .. } = &self.outcome {
            m.serialize_entry("restored_last_good", restored)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_in_utc() {
        let t = |s: u64, ms: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms))
        };
        assert_eq!(t(0, 0), "1970-01-01T00:00:00.000Z");
        // `date -u -d @951782400` = 2000-02-29 00:00:00 (a leap day).
        assert_eq!(t(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        // `date -u -d @1798761599` = 2026-12-31 23:59:59.
        assert_eq!(t(1_798_761_599, 999), "2026-12-31T23:59:59.999Z");
    }
}
