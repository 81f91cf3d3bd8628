//! Window assignment: which windows a row's event time falls in.

use std::fmt;

/// A window definition, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// Fixed, non-overlapping windows `[k·width, (k+1)·width)`.
    Tumble { width: i64 },
    /// Windows of `width` starting every `slide`; a row is in `width / slide` of them.
    Hop { slide: i64, width: i64 },
    /// A window per key that stays open while rows keep arriving within `gap`.
    Session { gap: i64 },
}

impl WindowSpec {
    /// The start of the last window (the latest-starting one) containing `t`, and how many
    /// windows contain it, each starting one `step` earlier.
    pub fn assign(&self, t: i64) -> (i64, i64, usize) {
        match *self {
            WindowSpec::Tumble { width } => (t - t.rem_euclid(width), width, 1),
            WindowSpec::Hop { slide, width } => {
                (t - t.rem_euclid(slide), slide, (width / slide) as usize)
            }
            WindowSpec::Session { .. } => (t, 0, 1),
        }
    }

    /// Length of a fixed window.
    pub fn width(&self) -> i64 {
        match *self {
            WindowSpec::Tumble { width } | WindowSpec::Hop { width, .. } => width,
            WindowSpec::Session { gap } => gap,
        }
    }
}

/// A duration in the largest unit that divides it: `10s`, `1min`, `250ms`.
pub fn human(nanos: i64) -> String {
    const UNITS: [(i64, &str); 6] = [
        (86_400_000_000_000, "d"),
        (3_600_000_000_000, "h"),
        (60_000_000_000, "min"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1, "ns"),
    ];
    for (size, unit) in UNITS {
        if nanos % size == 0 {
            return format!("{}{unit}", nanos / size);
        }
    }
    format!("{nanos}ns")
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WindowSpec::Tumble { width } => write!(f, "tumble({})", human(width)),
            WindowSpec::Hop { slide, width } => {
                write!(f, "hop(slide {}, width {})", human(slide), human(width))
            }
            WindowSpec::Session { gap } => write!(f, "session(gap {})", human(gap)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment() {
        let tumble = WindowSpec::Tumble { width: 10 };
        assert_eq!(tumble.assign(25), (20, 10, 1));
        assert_eq!(tumble.assign(-5), (-10, 10, 1));
        let hop = WindowSpec::Hop {
            slide: 5,
            width: 15,
        };
        // [15, 30), [10, 25), [5, 20) contain 17.
        assert_eq!(hop.assign(17), (15, 5, 3));
        assert_eq!(hop.to_string(), "hop(slide 5ns, width 15ns)");
        assert_eq!(
            WindowSpec::Tumble {
                width: 60_000_000_000
            }
            .to_string(),
            "tumble(1min)"
        );
    }
}
