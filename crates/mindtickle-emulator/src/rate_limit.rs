//! Per-company request budget over sliding windows, shared by every host of the emulator.

use std::{collections::VecDeque, time::Duration};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Published limit that the emulator enforces. The public record disagrees on the numbers,
/// so tests can run against either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitProfile {
    /// 5 per second, 220 per minute and 3000 per hour, as quoted by two live integrations.
    #[default]
    Documented,
    /// 4 per second and 60 per minute, as quoted by a third-party API profile.
    Strict,
    /// No limit.
    Off,
}

impl RateLimitProfile {
    fn windows(self) -> &'static [(usize, Duration)] {
        const SECOND: Duration = Duration::from_secs(1);
        const MINUTE: Duration = Duration::from_secs(60);
        const HOUR: Duration = Duration::from_secs(3600);
        match self {
            RateLimitProfile::Documented => &[(5, SECOND), (220, MINUTE), (3000, HOUR)],
            RateLimitProfile::Strict => &[(4, SECOND), (60, MINUTE)],
            RateLimitProfile::Off => &[],
        }
    }
}

impl std::str::FromStr for RateLimitProfile {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "documented" => Ok(RateLimitProfile::Documented),
            "strict" => Ok(RateLimitProfile::Strict),
            "off" => Ok(RateLimitProfile::Off),
            other => Err(format!(
                "unknown rate-limit profile {other:?}; use documented, strict or off"
            )),
        }
    }
}

/// Times of the requests admitted within the longest window of the profile.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    admitted: VecDeque<Instant>,
}

impl RequestLog {
    /// Admits a request at `now`, or returns how long to wait until one would be admitted.
    pub fn admit(&mut self, profile: RateLimitProfile, now: Instant) -> Result<(), Duration> {
        let windows = profile.windows();
        let Some(longest) = windows.iter().map(|(_, window)| *window).max() else {
            return Ok(());
        };
        while let Some(&oldest) = self.admitted.front() {
            if now.duration_since(oldest) >= longest {
                self.admitted.pop_front();
            } else {
                break;
            }
        }

        let mut wait = Duration::ZERO;
        for &(max, window) in windows {
            let in_window = self
                .admitted
                .iter()
                .rev()
                .take_while(|&&t| now.duration_since(t) < window)
                .count();
            if in_window >= max {
                // The request that must leave the window first is the `max`-th newest one.
                let index = self.admitted.len() - max;
                let frees_at = self.admitted[index] + window;
                wait = wait.max(frees_at.duration_since(now));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        self.admitted.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn strict_profile_rejects_fifth_request_in_a_second() {
        let mut log = RequestLog::default();
        let start = Instant::now();
        for _ in 0..4 {
            assert!(log.admit(RateLimitProfile::Strict, start).is_ok());
        }
        let wait = log.admit(RateLimitProfile::Strict, start).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1));
        assert!(
            log.admit(RateLimitProfile::Strict, start + Duration::from_secs(1))
                .is_ok()
        );
    }

    #[test]
    fn minute_window_reports_time_until_oldest_expires() {
        let mut log = RequestLog::default();
        let start = Instant::now();
        for i in 0..60 {
            let at = start + Duration::from_millis(i * 300);
            assert!(
                log.admit(RateLimitProfile::Strict, at).is_ok(),
                "request {i}"
            );
        }
        let now = start + Duration::from_secs(20);
        let wait = log.admit(RateLimitProfile::Strict, now).unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
    }

    #[test]
    fn off_profile_admits_everything() {
        let mut log = RequestLog::default();
        let now = Instant::now();
        for _ in 0..10_000 {
            assert!(log.admit(RateLimitProfile::Off, now).is_ok());
        }
    }
}
