//! A per-second budget of log lines, so that a flood of bad requests cannot fill the
//! operator's log: past the budget, lines are counted and summed up in one line the next
//! second. Pure data with the clock passed in; the event loop owns the one budget.

use std::time::{Duration, Instant};

/// Lines logged per second at most.
pub(crate) const LINES_PER_SEC: u32 = 20;

/// What to do with one more line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Log it.
    Log,
    /// Log it, after a line saying how many were left out in the last window.
    LogAfter(u64),
    /// Leave it out (it is counted).
    Suppress,
}

/// The budget: how many lines may still be logged in the current one-second window.
#[derive(Debug, Default)]
pub(crate) struct LogBudget {
    window: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl LogBudget {
    /// Takes one line out of the budget at `now`.
    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        let mut left_out = 0;
        if self
            .window
            .is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1))
        {
            left_out = self.suppressed;
            *self = LogBudget {
                window: Some(now),
                ..LogBudget::default()
            };
        }
        if self.logged >= LINES_PER_SEC {
            self.suppressed += 1;
            return Admit::Suppress;
        }
        self.logged += 1;
        if left_out > 0 {
            Admit::LogAfter(left_out)
        } else {
            Admit::Log
        }
    }

    /// Logs a refusal at `level` within the budget (the line is built only if logged).
    pub(crate) fn log(&mut self, now: Instant, level: log::Level, line: impl FnOnce() -> String) {
        if !log::log_enabled!(level) {
            return;
        }
        match self.admit(now) {
            Admit::Suppress => {}
            Admit::LogAfter(n) => {
                log::log!(
                    level,
                    "({n} more refusals were not logged in the last second)"
                );
                log::log!(level, "{}", line());
            }
            Admit::Log => log::log!(level, "{}", line()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_logged_within_a_budget_per_second_and_summed_up_after() {
        let mut budget = LogBudget::default();
        let start = Instant::now();
        for _ in 0..LINES_PER_SEC {
            assert_eq!(budget.admit(start), Admit::Log);
        }
        for i in 0..100 {
            assert_eq!(
                budget.admit(start + Duration::from_millis(i)),
                Admit::Suppress
            );
        }
        let next = start + Duration::from_secs(1);
        assert_eq!(budget.admit(next), Admit::LogAfter(100));
        assert_eq!(budget.admit(next), Admit::Log);
    }
}
