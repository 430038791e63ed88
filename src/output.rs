//! Command output on stdout, for the command line and the benchmarks.

/// Writes to stdout. A reader that stopped reading (`qcgate call … | grep -q`)
/// is not an error: there is nothing left to tell it (`print!` would panic).
pub(crate) fn write_out(text: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => written,
    }
}

/// `print!` for command output, as an `io::Result` (see [`write_out`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!($($arg)*)) };
}

/// `println!` for command output, as an `io::Result` (see [`write_out`]).
macro_rules! outln {
    ($($arg:tt)*) => { $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};
