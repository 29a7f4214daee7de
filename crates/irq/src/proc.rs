//! `/proc/interrupts` and `/proc/softirqs`.
//!
//! Mirrors `show_interrupts()` in `kernel/irq/proc.c` (with x86's `ERR:` row
//! from `arch_show_interrupts()`) and `show_softirqs()` in
//! `fs/proc/softirqs.c`, byte for byte in layout: the same column widths,
//! the same header, trailing spaces included.

use core::fmt::Write as _;

use crate::irqdesc::IrqTable;
use crate::softirq::{SoftirqNr, Softirqs};

/// The flow handler's name, printed after the hardware line number
/// (`desc->name`, set by `irq_set_chip_and_handler_name()`).
const FLOW_NAME: &str = "edge";

impl IrqTable {
    /// The text of `/proc/interrupts` for this table.
    ///
    /// Mirrors `show_interrupts()` in `kernel/irq/proc.c`: a header of
    /// `CPU0 CPU1 …`, then one row per line that has a handler or has ever
    /// been counted — the line number, the per-CPU counts (`%10u`), the chip
    /// name (`%8s`), the hardware line number (the chip maps lines 1:1),
    /// `-edge` and the handler's name — and x86's `ERR:` row
    /// ([`IrqTable::irq_err_count`]).
    ///
    /// ```text
    ///            CPU0       CPU1
    ///  24:        120          0  netstack-msi  24-edge      eth0-rx-0
    /// ERR:          0
    /// ```
    #[doc(alias = "show_interrupts")]
    pub fn proc_interrupts(&self) -> String {
        let prec = irq_num_prec(self.nr_irqs());
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = write!(out, "{:prec$}", "", prec = prec + 8);
        for cpu in 0..self.nr_cpus() {
            let _ = write!(out, "CPU{cpu:<8}");
        }
        out.push('\n');
        for desc in &self.descs {
            let name = desc.action_name();
            if name.is_none() && desc.kstat_irqs() == 0 {
                continue;
            }
            let _ = write!(out, "{:>prec$}:", desc.irq());
            for cpu in 0..self.nr_cpus() {
                let _ = write!(out, " {:>10}", desc.kstat_irqs_cpu(cpu));
            }
            let _ = write!(out, "  {:>8}", self.chip_name);
            let _ = write!(out, " {:>prec$}", desc.irq());
            let _ = write!(out, "-{FLOW_NAME:<8}");
            if let Some(name) = name {
                let _ = write!(out, "  {name}");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "{:>prec$}: {:>10}", "ERR", self.irq_err_count());
        out
    }
}

/// The width of the line-number column: 3 digits, one more per power of ten
/// the table reaches (`irq_num_prec` in `kernel/irq/proc.c`).
fn irq_num_prec(nr_irqs: u32) -> usize {
    let mut prec = 3;
    let mut j = 1000u64;
    while prec < 10 && j <= u64::from(nr_irqs) {
        prec += 1;
        j *= 10;
    }
    prec
}

impl Softirqs {
    /// The text of `/proc/softirqs` for this host.
    ///
    /// Mirrors `show_softirqs()` in `fs/proc/softirqs.c`: a header of
    /// `CPU0 CPU1 …` after 20 spaces, then one row per vector (`%12s:`),
    /// with one `%10u` count per CPU.
    ///
    /// ```text
    ///                     CPU0       CPU1
    ///           HI:          0          0
    ///        TIMER:          3          0
    /// ```
    #[doc(alias = "show_softirqs")]
    pub fn proc_softirqs(&self) -> String {
        let mut out = String::from("                    ");
        for cpu in 0..self.nr_cpus() {
            let _ = write!(out, "CPU{cpu:<8}");
        }
        out.push('\n');
        for nr in SoftirqNr::ALL {
            let _ = write!(out, "{:>12}:", nr.name());
            for cpu in 0..self.nr_cpus() {
                let _ = write!(
                    out,
                    " {:>10}",
                    self.kstat_softirqs_cpu(nr, cpu).unwrap_or(0)
                );
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::irq_num_prec;

    #[test]
    fn prec_grows_with_the_table() {
        assert_eq!(irq_num_prec(1), 3);
        assert_eq!(irq_num_prec(999), 3);
        assert_eq!(irq_num_prec(1000), 4);
        assert_eq!(irq_num_prec(65536), 5);
    }
}
