//! The fd table: the lowest free fd, found without walking the table.
//!
//! Mirrors `fs/file.c`: `struct fdtable` with its `open_fds` bitmap (one
//! bit per fd) and `full_fds_bits` (one bit per word of `open_fds` that is
//! all ones), `files_struct.next_fd` (no fd below it is free),
//! `alloc_fd()`, `find_next_fd()` and `__put_unused_fd()`. Allocating the
//! lowest free fd costs a word or two of bitmap per call however many fds
//! are open, as in Linux, instead of a scan of the whole table.
//!
//! ```text
//!  full_fds_bits:  1 1 0 ...            word i of open_fds is all ones?
//!  open_fds:      [64 x 1][64 x 1][1101...]   fd = first zero bit >= next_fd
//!  fd[]:           the files
//! ```
//!
//! # Deviations from Linux
//!
//! - The table grows one word (64 fds) at a time as fds are allocated
//!   instead of doubling through `expand_files()`; nothing is ever shared
//!   with RCU readers, so there is no copy on growth to amortise.

/// Bits per bitmap word (`BITS_PER_LONG`).
const BITS: usize = u64::BITS as usize;

/// One process's open files. Mirrors `struct fdtable` with
/// `files_struct.next_fd`.
#[derive(Debug)]
pub(crate) struct FdTable<T> {
    fd: Vec<Option<T>>,
    open_fds: Vec<u64>,
    full_fds_bits: Vec<u64>,
    next_fd: usize,
}

impl<T> Default for FdTable<T> {
    fn default() -> Self {
        FdTable {
            fd: Vec::new(),
            open_fds: Vec::new(),
            full_fds_bits: Vec::new(),
            next_fd: 0,
        }
    }
}

/// The first zero bit of `words` at or after bit `start`, if any.
fn find_next_zero_bit(words: &[u64], start: usize) -> Option<usize> {
    let mut w = start / BITS;
    let mut word = !words.get(w)? & (u64::MAX << (start % BITS));
    loop {
        if word != 0 {
            return Some(w * BITS + word.trailing_zeros() as usize);
        }
        w += 1;
        word = !*words.get(w)?;
    }
}

impl<T> FdTable<T> {
    /// An empty table.
    pub(crate) fn new() -> FdTable<T> {
        FdTable::default()
    }

    /// The lowest fd at or after `start` that is not open (possibly one
    /// past the table). Mirrors `find_next_fd()`: the word of `start`
    /// first, then the first word that is not full.
    fn find_next_fd(&self, start: usize) -> usize {
        let maxfd = self.open_fds.len() * BITS;
        let bitbit = start / BITS;
        if let Some(word) = self.open_fds.get(bitbit) {
            let free = !word & (u64::MAX << (start % BITS));
            if free != 0 {
                return bitbit * BITS + free.trailing_zeros() as usize;
            }
        }
        let Some(word) = find_next_zero_bit(&self.full_fds_bits, bitbit + 1) else {
            return maxfd.max(start);
        };
        if word >= self.open_fds.len() {
            return maxfd.max(start);
        }
        let start = start.max(word * BITS);
        find_next_zero_bit(&self.open_fds, start).unwrap_or(maxfd)
    }

    /// Installs `file` at the lowest free fd below `end` and returns it;
    /// `None` when every fd below `end` is open. Mirrors `alloc_fd(0,
    /// end)` followed by `fd_install()`.
    pub(crate) fn alloc_fd(&mut self, file: T, end: usize) -> Option<usize> {
        let fd = self.find_next_fd(self.next_fd);
        if fd >= end {
            return None;
        }
        let word = fd / BITS;
        if word >= self.open_fds.len() {
            self.open_fds.resize(word + 1, 0);
            self.full_fds_bits
                .resize(self.open_fds.len().div_ceil(BITS), 0);
            self.fd.resize_with(self.open_fds.len() * BITS, || None);
        }
        self.open_fds[word] |= 1 << (fd % BITS);
        if self.open_fds[word] == u64::MAX {
            self.full_fds_bits[word / BITS] |= 1 << (word % BITS);
        }
        self.next_fd = fd + 1;
        self.fd[fd] = Some(file);
        Some(fd)
    }

    /// The file open at `fd`.
    pub(crate) fn get(&self, fd: usize) -> Option<&T> {
        self.fd.get(fd).and_then(Option::as_ref)
    }

    /// Replaces the file open at `fd` (an fd reserved by `accept` gets its
    /// socket); `None` if `fd` is not open.
    pub(crate) fn replace(&mut self, fd: usize, file: T) -> Option<T> {
        self.fd
            .get_mut(fd)
            .filter(|f| f.is_some())
            .and_then(|f| f.replace(file))
    }

    /// Closes `fd` and returns its file. Mirrors `file_close_fd()` with
    /// `__put_unused_fd()`: the fd is free again and `next_fd` moves back
    /// to it if it is lower.
    pub(crate) fn take(&mut self, fd: usize) -> Option<T> {
        let file = self.fd.get_mut(fd)?.take()?;
        let word = fd / BITS;
        self.open_fds[word] &= !(1 << (fd % BITS));
        self.full_fds_bits[word / BITS] &= !(1 << (word % BITS));
        self.next_fd = self.next_fd.min(fd);
        Some(file)
    }

    /// The open fds with their files, in fd order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.fd
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.as_ref().map(|f| (i, f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_fd_first_and_reused_after_close() {
        let mut t = FdTable::new();
        for i in 0..200 {
            assert_eq!(t.alloc_fd(i, 1000), Some(i));
        }
        assert_eq!(t.take(70), Some(70));
        assert_eq!(t.take(5), Some(5));
        assert_eq!(t.take(150), Some(150));
        assert_eq!(t.take(150), None);
        assert_eq!(t.get(150), None);
        assert_eq!(t.alloc_fd(1005, 1000), Some(5));
        assert_eq!(t.alloc_fd(1070, 1000), Some(70));
        assert_eq!(t.alloc_fd(1150, 1000), Some(150));
        assert_eq!(t.alloc_fd(200, 1000), Some(200));
        assert_eq!(t.get(70), Some(&1070));
        assert_eq!(t.iter().count(), 201);
    }

    #[test]
    fn the_limit_is_respected_and_a_full_table_grows() {
        let mut t = FdTable::new();
        for i in 0..64 {
            assert_eq!(t.alloc_fd(i, 64), Some(i));
        }
        assert_eq!(t.alloc_fd(64, 64), None);
        assert_eq!(t.alloc_fd(64, 65), Some(64));
        t.take(3);
        assert_eq!(t.alloc_fd(3, 65), Some(3));
        assert_eq!(t.alloc_fd(99, 65), None);
    }

    #[test]
    fn replace_only_touches_open_fds() {
        let mut t = FdTable::new();
        assert_eq!(t.alloc_fd('a', 10), Some(0));
        assert_eq!(t.replace(0, 'b'), Some('a'));
        assert_eq!(t.replace(1, 'c'), None);
        assert_eq!(t.get(1), None);
        assert_eq!(t.get(0), Some(&'b'));
    }

    /// Against a plain scan for the lowest free slot, over a long random
    /// sequence of opens and closes spanning many bitmap words (and more
    /// than 64 words, so `full_fds_bits` has several words).
    #[test]
    fn matches_a_linear_scan() {
        let mut t = FdTable::new();
        let mut model: Vec<bool> = Vec::new();
        let mut open = 0usize;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for step in 0..60_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Opens only up to 3,000 fds, then a mix up to 6,000.
            if open < 3_000 || (open < 6_000 && x.is_multiple_of(2)) {
                let want = model.iter().position(|&o| !o).unwrap_or(model.len());
                assert_eq!(t.alloc_fd(step, 10_000), Some(want), "step {step}");
                if want == model.len() {
                    model.push(true);
                } else {
                    model[want] = true;
                }
                open += 1;
            } else {
                let fd = (x >> 8) as usize % model.len();
                assert_eq!(t.take(fd).is_some(), model[fd], "close {fd}");
                open -= usize::from(model[fd]);
                model[fd] = false;
            }
        }
        assert_eq!(t.iter().count(), open);
    }
}
