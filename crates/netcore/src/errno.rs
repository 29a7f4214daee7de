//! Error numbers with Linux's values, for the socket API and for anything
//! that reports an errno (netfilter verdicts, `ethtool` and `ip` errors).
//!
//! Mirrors `include/uapi/asm-generic/errno-base.h` and
//! `include/uapi/asm-generic/errno.h` (the x86-64 values); the messages are
//! the C library's `strerror()` texts.

use core::fmt;

macro_rules! errnos {
    ($($variant:ident = $num:literal, $name:literal, $msg:literal;)*) => {
        /// An error number with its Linux value.
        ///
        /// Mirrors the `E*` constants of `include/uapi/asm-generic/errno*.h`.
        /// Each variant is the C name without its leading `E`, in CamelCase
        /// (`EADDRINUSE` is [`Errno::AddrInUse`]), and carries the C name as a
        /// doc alias. Kernel functions return `-errno`; Rust code returns
        /// `Err(Errno)`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(i32)]
        pub enum Errno {
            $(
                #[doc = concat!("`", $name, "` (", stringify!($num), "): ", $msg, ".")]
                #[doc(alias = $name)]
                $variant = $num,
            )*
        }

        impl Errno {
            /// Every error number this type knows, in numeric order.
            pub const ALL: &'static [Errno] = &[$(Errno::$variant),*];

            /// The C name, e.g. `"EINVAL"`.
            pub const fn name(self) -> &'static str {
                match self { $(Errno::$variant => $name,)* }
            }

            /// The `strerror()` text, e.g. `"Invalid argument"`.
            pub const fn strerror(self) -> &'static str {
                match self { $(Errno::$variant => $msg,)* }
            }

            /// The error number for `n`, or `None` if this type does not know it.
            pub const fn from_i32(n: i32) -> Option<Errno> {
                match n { $($num => Some(Errno::$variant),)* _ => None }
            }
        }
    };
}

errnos! {
    Perm = 1, "EPERM", "Operation not permitted";
    NoEnt = 2, "ENOENT", "No such file or directory";
    Srch = 3, "ESRCH", "No such process";
    Intr = 4, "EINTR", "Interrupted system call";
    Io = 5, "EIO", "Input/output error";
    NxIo = 6, "ENXIO", "No such device or address";
    TooBig = 7, "E2BIG", "Argument list too long";
    BadF = 9, "EBADF", "Bad file descriptor";
    Again = 11, "EAGAIN", "Resource temporarily unavailable";
    NoMem = 12, "ENOMEM", "Cannot allocate memory";
    Acces = 13, "EACCES", "Permission denied";
    Fault = 14, "EFAULT", "Bad address";
    Busy = 16, "EBUSY", "Device or resource busy";
    Exist = 17, "EEXIST", "File exists";
    NoDev = 19, "ENODEV", "No such device";
    Inval = 22, "EINVAL", "Invalid argument";
    NFile = 23, "ENFILE", "Too many open files in system";
    MFile = 24, "EMFILE", "Too many open files";
    NoTty = 25, "ENOTTY", "Inappropriate ioctl for device";
    NoSpc = 28, "ENOSPC", "No space left on device";
    Pipe = 32, "EPIPE", "Broken pipe";
    Range = 34, "ERANGE", "Numerical result out of range";
    NoSys = 38, "ENOSYS", "Function not implemented";
    NoData = 61, "ENODATA", "No data available";
    Time = 62, "ETIME", "Timer expired";
    Proto = 71, "EPROTO", "Protocol error";
    BadMsg = 74, "EBADMSG", "Bad message";
    Overflow = 75, "EOVERFLOW", "Value too large for defined data type";
    NotSock = 88, "ENOTSOCK", "Socket operation on non-socket";
    DestAddrReq = 89, "EDESTADDRREQ", "Destination address required";
    MsgSize = 90, "EMSGSIZE", "Message too long";
    ProtoType = 91, "EPROTOTYPE", "Protocol wrong type for socket";
    NoProtoOpt = 92, "ENOPROTOOPT", "Protocol not available";
    ProtoNoSupport = 93, "EPROTONOSUPPORT", "Protocol not supported";
    SockTNoSupport = 94, "ESOCKTNOSUPPORT", "Socket type not supported";
    OpNotSupp = 95, "EOPNOTSUPP", "Operation not supported";
    PfNoSupport = 96, "EPFNOSUPPORT", "Protocol family not supported";
    AfNoSupport = 97, "EAFNOSUPPORT", "Address family not supported by protocol";
    AddrInUse = 98, "EADDRINUSE", "Address already in use";
    AddrNotAvail = 99, "EADDRNOTAVAIL", "Cannot assign requested address";
    NetDown = 100, "ENETDOWN", "Network is down";
    NetUnreach = 101, "ENETUNREACH", "Network is unreachable";
    NetReset = 102, "ENETRESET", "Network dropped connection on reset";
    ConnAborted = 103, "ECONNABORTED", "Software caused connection abort";
    ConnReset = 104, "ECONNRESET", "Connection reset by peer";
    NoBufs = 105, "ENOBUFS", "No buffer space available";
    IsConn = 106, "EISCONN", "Transport endpoint is already connected";
    NotConn = 107, "ENOTCONN", "Transport endpoint is not connected";
    Shutdown = 108, "ESHUTDOWN", "Cannot send after transport endpoint shutdown";
    TimedOut = 110, "ETIMEDOUT", "Connection timed out";
    ConnRefused = 111, "ECONNREFUSED", "Connection refused";
    HostDown = 112, "EHOSTDOWN", "Host is down";
    HostUnreach = 113, "EHOSTUNREACH", "No route to host";
    Already = 114, "EALREADY", "Operation already in progress";
    InProgress = 115, "EINPROGRESS", "Operation now in progress";
}

impl Errno {
    /// `EWOULDBLOCK`, which Linux defines as `EAGAIN`.
    #[doc(alias = "EWOULDBLOCK")]
    pub const WOULD_BLOCK: Errno = Errno::Again;
    /// `ENOTSUP`, which Linux defines as `EOPNOTSUPP`.
    #[doc(alias = "ENOTSUP")]
    pub const NOT_SUP: Errno = Errno::OpNotSupp;

    /// The positive error number, e.g. 22 for `EINVAL`.
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The negative value a kernel function returns, e.g. -22.
    pub const fn as_neg(self) -> i32 {
        -(self as i32)
    }
}

/// A number that is not an error number [`Errno`] knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownErrno(pub i32);

impl fmt::Display for UnknownErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown error number {}: accepts the positive Linux errno values",
            self.0
        )
    }
}

impl core::error::Error for UnknownErrno {}

impl TryFrom<i32> for Errno {
    type Error = UnknownErrno;
    /// Converts a positive error number; a negative kernel-style return
    /// must be negated first.
    fn try_from(n: i32) -> Result<Errno, UnknownErrno> {
        Errno::from_i32(n).ok_or(UnknownErrno(n))
    }
}

impl From<Errno> for i32 {
    fn from(e: Errno) -> i32 {
        e.as_i32()
    }
}

impl fmt::Display for Errno {
    /// The `strerror()` text, as `perror()` would print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.strerror())
    }
}

impl core::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_linuxs() {
        let expect = [
            (Errno::Perm, 1),
            (Errno::Intr, 4),
            (Errno::BadF, 9),
            (Errno::Again, 11),
            (Errno::NoMem, 12),
            (Errno::Fault, 14),
            (Errno::Inval, 22),
            (Errno::NFile, 23),
            (Errno::MFile, 24),
            (Errno::Pipe, 32),
            (Errno::NotSock, 88),
            (Errno::DestAddrReq, 89),
            (Errno::MsgSize, 90),
            (Errno::NoProtoOpt, 92),
            (Errno::ProtoNoSupport, 93),
            (Errno::OpNotSupp, 95),
            (Errno::AfNoSupport, 97),
            (Errno::AddrInUse, 98),
            (Errno::AddrNotAvail, 99),
            (Errno::NetUnreach, 101),
            (Errno::ConnAborted, 103),
            (Errno::ConnReset, 104),
            (Errno::NoBufs, 105),
            (Errno::IsConn, 106),
            (Errno::NotConn, 107),
            (Errno::TimedOut, 110),
            (Errno::ConnRefused, 111),
            (Errno::HostUnreach, 113),
            (Errno::Already, 114),
            (Errno::InProgress, 115),
        ];
        for (e, n) in expect {
            assert_eq!(e.as_i32(), n, "{}", e.name());
            assert_eq!(Errno::try_from(n), Ok(e));
            assert_eq!(i32::from(e), n);
        }
        assert_eq!(Errno::WOULD_BLOCK, Errno::Again);
        assert_eq!(Errno::Inval.as_neg(), -22);
    }

    #[test]
    fn names_and_messages() {
        assert_eq!(Errno::Inval.name(), "EINVAL");
        assert_eq!(Errno::TooBig.name(), "E2BIG");
        assert_eq!(Errno::ConnRefused.to_string(), "Connection refused");
        assert_eq!(Errno::AddrInUse.to_string(), "Address already in use");
    }

    #[test]
    fn unknown_numbers_are_errors() {
        assert_eq!(Errno::try_from(0), Err(UnknownErrno(0)));
        assert_eq!(Errno::try_from(-22), Err(UnknownErrno(-22)));
        assert_eq!(
            UnknownErrno(8).to_string(),
            "unknown error number 8: accepts the positive Linux errno values"
        );
    }

    #[test]
    fn table_is_sorted_and_round_trips() {
        for w in Errno::ALL.windows(2) {
            assert!(w[0].as_i32() < w[1].as_i32());
        }
        for &e in Errno::ALL {
            assert_eq!(Errno::from_i32(e.as_i32()), Some(e));
            assert!(e.name().starts_with('E'));
        }
    }
}
