//! Freeze windows: weekly (`{ from = "Fri 16:00", to = "Mon 08:00", tz = "Europe/Berlin" }`)
//! or one-off date ranges (`{ from = "2026-12-24 00:00", to = "2026-12-27 08:00" }`), in a
//! time zone, evaluated against a given instant so that tests use a fixed clock.

use crate::domain::Millis;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

const WEEK_MINUTES: i64 = 7 * 24 * 60;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A parsed freeze window.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(try_from = "RawFreeze")]
pub struct Freeze {
    raw: RawFreeze,
    span: Window,
    tz: TimeZone,
}

/// As written in the config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFreeze {
    pub from: String,
    pub to: String,
    #[serde(default = "utc")]
    pub tz: String,
}

fn utc() -> String {
    "UTC".to_string()
}

#[derive(Debug, Clone, PartialEq)]
enum Window {
    /// Minutes since Monday 00:00 local time; `from > to` wraps over the week's end.
    Weekly {
        from: i64,
        to: i64,
    },
    Dates {
        from: DateTime,
        to: DateTime,
    },
}

impl PartialEq for Freeze {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "freeze window {0}: write weekly times as `Fri 16:00` or dates as `2026-12-24 00:00` (both ends alike), and a time zone such as `Europe/Berlin`"
)]
pub struct FreezeError(String);

impl TryFrom<RawFreeze> for Freeze {
    type Error = FreezeError;
    fn try_from(raw: RawFreeze) -> Result<Self, Self::Error> {
        let err = |what: &str| FreezeError(format!("`{} → {}` ({what})", raw.from, raw.to));
        let tz =
            TimeZone::get(&raw.tz).map_err(|_| err(&format!("unknown time zone `{}`", raw.tz)))?;
        let span = match (weekly(&raw.from), weekly(&raw.to)) {
            (Some(from), Some(to)) if from != to => Window::Weekly { from, to },
            (Some(_), Some(_)) => return Err(err("it starts where it ends")),
            _ => match (date(&raw.from), date(&raw.to)) {
                (Some(from), Some(to)) if from < to => Window::Dates { from, to },
                (Some(_), Some(_)) => return Err(err("it ends before it starts")),
                _ => return Err(err("unreadable time")),
            },
        };
        Ok(Freeze { raw, span, tz })
    }
}

/// `Fri 16:00` → minutes since Monday 00:00.
fn weekly(text: &str) -> Option<i64> {
    let (day, time) = text.trim().split_once(' ')?;
    let day = DAYS
        .iter()
        .position(|d| day.to_lowercase().starts_with(d) && day.len() >= 3)? as i64;
    let (h, m) = time.trim().split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(day * 1440 + h * 60 + m)
}

/// `2026-12-24 00:00` or `2026-12-24`.
fn date(text: &str) -> Option<DateTime> {
    let text = text.trim();
    let full = if text.len() == 10 {
        format!("{text}T00:00")
    } else {
        text.replacen(' ', "T", 1)
    };
    full.parse::<DateTime>().ok()
}

impl Freeze {
    /// When the window that holds `now` ends, or `None` when `now` is outside it.
    pub fn ends(&self, now: Millis) -> Option<Millis> {
        let ts = Timestamp::from_millisecond(now).ok()?;
        let local = ts.to_zoned(self.tz.clone());
        match &self.span {
            Window::Weekly { from, to } => {
                let dt = local.datetime();
                let minute = i64::from(dt.weekday().to_monday_zero_offset()) * 1440
                    + i64::from(dt.hour()) * 60
                    + i64::from(dt.minute());
                let inside = if from < to {
                    (*from..*to).contains(&minute)
                } else {
                    minute >= *from || minute < *to
                };
                if !inside {
                    return None;
                }
                let ahead = (to - minute).rem_euclid(WEEK_MINUTES);
                let start_of_minute = dt.with().second(0).subsec_nanosecond(0).build().ok()?;
                let end = start_of_minute
                    .checked_add(Span::new().minutes(ahead))
                    .ok()?;
                Some(
                    end.to_zoned(self.tz.clone())
                        .ok()?
                        .timestamp()
                        .as_millisecond(),
                )
            }
            Window::Dates { from, to } => {
                let start = from.to_zoned(self.tz.clone()).ok()?.timestamp();
                let end = to.to_zoned(self.tz.clone()).ok()?.timestamp();
                (start <= ts && ts < end).then(|| end.as_millisecond())
            }
        }
    }

    /// `Fri 16:00 → Mon 08:00 Europe/Berlin`.
    pub fn describe(&self) -> String {
        format!("{} → {} {}", self.raw.from, self.raw.to, self.raw.tz)
    }

    /// The time zone's name, for showing the end in local time.
    pub fn local(&self, at: Millis) -> String {
        match Timestamp::from_millisecond(at) {
            Ok(ts) => ts
                .to_zoned(self.tz.clone())
                .strftime("%a %Y-%m-%d %H:%M %Z")
                .to_string(),
            Err(_) => at.to_string(),
        }
    }
}

/// The first window of `windows` holding `now`, with its end.
pub fn frozen(windows: &[Freeze], now: Millis) -> Option<(&Freeze, Millis)> {
    windows.iter().find_map(|w| w.ends(now).map(|end| (w, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn freeze(from: &str, to: &str, tz: &str) -> Freeze {
        Freeze::try_from(RawFreeze {
            from: from.into(),
            to: to.into(),
            tz: tz.into(),
        })
        .unwrap()
    }

    fn at(text: &str) -> Millis {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn weekly_windows_wrap_over_the_weekend_in_local_time() {
        // Berlin is UTC+1 in November: Fri 16:00 local is 15:00 UTC.
        let w = freeze("Fri 16:00", "Mon 08:00", "Europe/Berlin");
        assert_eq!(w.ends(at("2026-11-20T14:59:00Z")), None, "Fri 15:59 Berlin");
        assert_eq!(
            w.ends(at("2026-11-20T15:00:00Z")),
            Some(at("2026-11-23T07:00:00Z")),
            "Fri 16:00 Berlin"
        );
        assert_eq!(
            w.ends(at("2026-11-22T12:00:00Z")),
            Some(at("2026-11-23T07:00:00Z")),
            "Sunday"
        );
        assert_eq!(
            w.ends(at("2026-11-23T06:59:59Z")),
            Some(at("2026-11-23T07:00:00Z")),
            "Mon 07:59 Berlin"
        );
        assert_eq!(
            w.ends(at("2026-11-23T07:00:00Z")),
            None,
            "Mon 08:00 Berlin: open again"
        );
        assert_eq!(
            w.local(at("2026-11-23T07:00:00Z")),
            "Mon 2026-11-23 08:00 CET"
        );
    }

    #[test]
    fn weekly_windows_follow_daylight_saving_time() {
        // New York: EDT (UTC-4) until 2026-11-01, EST (UTC-5) after.
        let w = freeze("Sat 00:00", "Sun 00:00", "America/New_York");
        assert!(
            w.ends(at("2026-10-31T04:00:00Z")).is_some(),
            "Sat 00:00 EDT"
        );
        assert!(w.ends(at("2026-10-31T03:59:00Z")).is_none());
        assert!(
            w.ends(at("2026-11-07T05:00:00Z")).is_some(),
            "Sat 00:00 EST"
        );
        assert!(w.ends(at("2026-11-07T04:59:00Z")).is_none());
    }

    #[test]
    fn date_ranges_are_one_off() {
        let w = freeze("2026-12-24", "2026-12-27 08:00", "Asia/Tokyo");
        assert_eq!(
            w.ends(at("2026-12-23T14:59:59Z")),
            None,
            "before midnight in Tokyo"
        );
        assert_eq!(
            w.ends(at("2026-12-23T15:00:00Z")),
            Some(at("2026-12-26T23:00:00Z"))
        );
        assert_eq!(w.ends(at("2026-12-26T23:00:00Z")), None);
    }

    #[test]
    fn bad_windows_explain_themselves() {
        for (from, to, tz) in [
            ("Fri 25:00", "Mon 08:00", "UTC"),
            ("Fri 16:00", "Mon 08:00", "Mars/Olympus"),
            ("2026-12-27", "2026-12-24", "UTC"),
            ("Fri 16:00", "2026-12-24", "UTC"),
            ("Fri 16:00", "Fri 16:00", "UTC"),
        ] {
            let e = Freeze::try_from(RawFreeze {
                from: from.into(),
                to: to.into(),
                tz: tz.into(),
            })
            .unwrap_err();
            assert!(e.to_string().contains("freeze window"), "{e}");
        }
    }
}
