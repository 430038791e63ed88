//! Programs a killed gateway left running. The command executor records
//! each program's process group (`pid` and its start time, so a reused pid
//! is never mistaken for it); the rescuer stops what is still running
//! before the job is failed or queued again, and says so.

/// What is recorded for a program just started.
pub fn describe(pid: u32) -> String {
    format!("pid {pid} start {}", start_time(pid).unwrap_or(0))
}

/// The process's start time in clock ticks since boot (`/proc/PID/stat`).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Stops the process group recorded as `detail` if its leader is the same
/// process still; returns what became of it, for the job's message.
pub fn stop(detail: &str) -> Option<String> {
    let mut words = detail.split_whitespace();
    let (Some("pid"), Some(pid), Some("start"), Some(start)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return None;
    };
    let (pid, start) = (pid.parse::<u32>().ok()?, start.parse::<u64>().ok()?);
    let group_alive = i32::try_from(pid).ok().is_some_and(|g| {
        // SAFETY: signal 0 only checks that the group exists.
        unsafe { libc::kill(-g, 0) == 0 }
    });
    if !group_alive {
        return Some(format!("its program (pid {pid}) had ended"));
    }
    // The leader may have died while what it started lives on; a living
    // leader must be the process recorded.
    if let Some(now) = start_time(pid)
        && now != start
    {
        return Some(format!("its program (pid {pid}) had ended"));
    }
    let g = i32::try_from(pid).ok()?;
    // SAFETY: a plain signal to a process group this gateway started.
    let sent = unsafe { libc::kill(-g, libc::SIGKILL) == 0 };
    Some(if sent {
        format!("its program (pid {pid}) and what it started were still running and were stopped")
    } else {
        format!("its program (pid {pid}) could not be stopped")
    })
}
