//! A windowed running minimum (or maximum) kept in three samples.
//!
//! Mirrors `lib/win_minmax.c` and `include/linux/win_minmax.h`, Kathleen
//! Nichols' algorithm as Linux uses it for `tp->rtt_min` (the 5-minute
//! minimum RTT, `tcp_min_rtt_wlen`) and BBR's bandwidth filter. The
//! filter keeps the best, second-best and third-best sample of the
//! window, each from a later part of it, so when the best one ages out a
//! good replacement is at hand without storing every sample.
//!
//! ```text
//!   s[0]: best in the window     s[1]: best after s[0]    s[2]: best after s[1]
//!   |<-------------------------- win ------------------------------>| now
//! ```

/// One sample: a time stamp and a value. Mirrors `struct minmax_sample`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MinmaxSample {
    /// When it was taken (`t`), in the caller's time unit.
    pub t: u32,
    /// The measurement (`v`).
    pub v: u32,
}

/// The filter state. Mirrors `struct minmax`.
///
/// Times are `u32` in whatever unit the caller passes (TCP passes
/// milliseconds, Linux's jiffies at `HZ=1000`) and compared with wrapping
/// arithmetic as the kernel does.
///
/// ```
/// use tcp::Minmax;
///
/// let mut m = Minmax::new(0, u32::MAX);
/// assert_eq!(m.running_min(100, 1, 30), 30);
/// // A quarter of the window later, the 50 becomes the second choice.
/// assert_eq!(m.running_min(100, 30, 50), 30);
/// // The 30 ages out of the 100-unit window: the 50 taken later remains.
/// assert_eq!(m.running_min(100, 120, 70), 50);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Minmax {
    /// The three choices, best first (`s[3]`).
    pub s: [MinmaxSample; 3],
}

impl Minmax {
    /// A filter holding only `meas` taken at `t`. Mirrors `minmax_reset()`.
    pub const fn new(t: u32, meas: u32) -> Minmax {
        let val = MinmaxSample { t, v: meas };
        Minmax { s: [val; 3] }
    }

    /// The current best value. Mirrors `minmax_get()`.
    pub const fn get(&self) -> u32 {
        self.s[0].v
    }

    /// Forgets every sample but `meas` and returns it. Mirrors
    /// `minmax_reset()`.
    pub fn reset(&mut self, t: u32, meas: u32) -> u32 {
        *self = Minmax::new(t, meas);
        meas
    }

    /// Promotes the later choices as the best one ages out of `win`, and
    /// takes new second and third choices from the later quarters of the
    /// window. Mirrors `minmax_subwin_update()`.
    fn subwin_update(&mut self, win: u32, val: MinmaxSample) -> u32 {
        let dt = val.t.wrapping_sub(self.s[0].t);
        if dt > win {
            // A whole window without a new best: shift the choices down;
            // the second may be out of the window too (the third is not).
            self.s = [self.s[1], self.s[2], val];
            if val.t.wrapping_sub(self.s[0].t) > win {
                self.s = [self.s[1], self.s[2], val];
            }
        } else if self.s[1].t == self.s[0].t && dt > win / 4 {
            // A quarter of the window without a new best: a second choice
            // from the second quarter.
            self.s[1] = val;
            self.s[2] = val;
        } else if self.s[2].t == self.s[1].t && dt > win / 2 {
            // Half the window: a third choice from the second half.
            self.s[2] = val;
        }
        self.s[0].v
    }

    /// Adds `meas` taken at `t` to a running minimum over `win` and
    /// returns the minimum. Mirrors `minmax_running_min()`.
    pub fn running_min(&mut self, win: u32, t: u32, meas: u32) -> u32 {
        let val = MinmaxSample { t, v: meas };
        if val.v <= self.s[0].v || val.t.wrapping_sub(self.s[2].t) > win {
            return self.reset(t, meas);
        }
        if val.v <= self.s[1].v {
            self.s[1] = val;
            self.s[2] = val;
        } else if val.v <= self.s[2].v {
            self.s[2] = val;
        }
        self.subwin_update(win, val)
    }

    /// Adds `meas` taken at `t` to a running maximum over `win` and
    /// returns the maximum. Mirrors `minmax_running_max()`.
    pub fn running_max(&mut self, win: u32, t: u32, meas: u32) -> u32 {
        let val = MinmaxSample { t, v: meas };
        if val.v >= self.s[0].v || val.t.wrapping_sub(self.s[2].t) > win {
            return self.reset(t, meas);
        }
        if val.v >= self.s[1].v {
            self.s[1] = val;
            self.s[2] = val;
        } else if val.v >= self.s[2].v {
            self.s[2] = val;
        }
        self.subwin_update(win, val)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_minimum_replaces_everything() {
        let mut m = Minmax::new(0, u32::MAX);
        assert_eq!(m.running_min(1000, 10, 500), 500);
        assert_eq!(m.running_min(1000, 20, 700), 500);
        assert_eq!(m.running_min(1000, 30, 400), 400);
        assert_eq!(m.s, [MinmaxSample { t: 30, v: 400 }; 3]);
    }

    #[test]
    fn the_minimum_expires_after_the_window_and_the_later_choices_take_over() {
        // A 300 s window in ms: 20 ms at t = 0, then a path change makes
        // every RTT 50 ms or more.
        let win = 300_000;
        let mut m = Minmax::new(0, u32::MAX);
        m.running_min(win, 0, 20_000);
        let mut t = 0;
        let mut seen = Vec::new();
        while t < 700_000 {
            t += 1000;
            // Slowly falling RTTs above the old minimum: 80 ms to 50 ms.
            let rtt = 80_000 - (t / 1000).min(300) * 100;
            seen.push((t, m.running_min(win, t, rtt)));
        }
        // Within the window the old 20 ms holds.
        assert!(
            seen.iter()
                .filter(|(t, _)| *t <= win)
                .all(|(_, v)| *v == 20_000)
        );
        // Past it the filter reports what the second and third choices
        // held, never more than a window-old minimum, and finally the
        // floor of 50 ms.
        let after: Vec<u32> = seen.iter().filter(|(t, _)| *t > win).map(|x| x.1).collect();
        assert!(
            after.iter().all(|&v| v > 20_000 && v <= 80_000),
            "{after:?}"
        );
        assert!(after.windows(2).all(|w| w[1] <= w[0]), "{after:?}");
        assert_eq!(*after.last().unwrap(), 50_000);
    }

    #[test]
    fn running_max_tracks_the_largest_and_wraps_time() {
        // Times near the u32 wrap still compare in order.
        let base = u32::MAX - 50;
        let mut m = Minmax::new(base, 0);
        assert_eq!(m.running_max(100, base, 10), 10);
        assert_eq!(m.running_max(100, base.wrapping_add(30), 7), 10);
        assert_eq!(m.running_max(100, base.wrapping_add(60), 8), 10);
        // 10 is 101 units old: the 8 (the best later choice) remains.
        assert_eq!(m.running_max(100, base.wrapping_add(101), 1), 8);
    }
}
