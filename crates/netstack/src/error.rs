//! The errors of building and running hosts and networks.

use core::fmt;

/// What went wrong building or running a host, a network or a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetstackError {
    /// An argument outside what the call accepts.
    BadArgument {
        /// The argument's name.
        name: &'static str,
        /// What it accepts.
        accepts: &'static str,
    },
    /// A configuration a layer refused (the message names it).
    Config(String),
    /// A lower layer refused (its error, as text).
    Layer(String),
    /// No device of that name on the host.
    NoDevice(String),
    /// No host of that name in the network.
    NoHost(String),
    /// A file could not be read or written.
    Io(String),
    /// A description file is malformed: the line and the problem.
    Parse {
        /// The 1-based line.
        line: usize,
        /// What is wrong there.
        problem: String,
    },
    /// `run_until_idle` used its whole event budget: something keeps the
    /// network busy forever (a timer re-armed at once, a packet loop).
    EventBudgetExhausted {
        /// The budget.
        budget: u64,
        /// The virtual time when it ran out, in nanoseconds.
        at_ns: u64,
    },
    /// The runtime cannot do what was asked (the message says why).
    Runtime(String),
}

impl NetstackError {
    pub(crate) fn bad_arg(name: &'static str, accepts: &'static str) -> NetstackError {
        NetstackError::BadArgument { name, accepts }
    }

    pub(crate) fn layer(e: impl fmt::Display) -> NetstackError {
        NetstackError::Layer(e.to_string())
    }
}

impl fmt::Display for NetstackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetstackError::BadArgument { name, accepts } => {
                write!(f, "bad argument `{name}`: accepts {accepts}")
            }
            NetstackError::Config(m) | NetstackError::Layer(m) | NetstackError::Runtime(m) => {
                f.write_str(m)
            }
            NetstackError::NoDevice(d) => write!(f, "no device named `{d}`"),
            NetstackError::NoHost(h) => write!(f, "no host named `{h}`"),
            NetstackError::Io(m) => write!(f, "I/O error: {m}"),
            NetstackError::Parse { line, problem } => write!(f, "line {line}: {problem}"),
            NetstackError::EventBudgetExhausted { budget, at_ns } => write!(
                f,
                "run_until_idle: the event budget of {budget} events ran out at {}.{:09} s; \
                 the network never goes idle (a timer re-armed at once, a forwarding loop?)",
                at_ns / 1_000_000_000,
                at_ns % 1_000_000_000
            ),
        }
    }
}

impl std::error::Error for NetstackError {}
