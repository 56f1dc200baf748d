//! Process hooks: spawn the entrypoint in its own process group, feed the payload on stdin,
//! capture bounded output, and kill the whole group on timeout.
//!
//! Fixes two CPA bugs: its timeout killed only the direct child (grandchildren lived on) and
//! leaked the waiting goroutine. Here every helper future lives inside this one future, so
//! nothing outlives a run, and the group is killed on every exit path. What escaped the group
//! is left to [`crate::reaper`].

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::Instant;

use crate::capture::{Captured, excerpt_text, read_capped, read_excerpt};
use crate::error::HookError;
use crate::outcome::HookOutcome;
use crate::reaper;
use crate::spec::ShellSpec;

/// After a kill, how long to wait for the pipes to close and the child to be reaped. Only a
/// process that escaped the group (setsid) or sits in uninterruptible sleep needs this much.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// How long the pipes may stay open after the hook exited and its group was killed. Whoever
/// still holds them escaped the group (setsid); after this the run is ended early so the
/// reaper kills them, instead of the run waiting for its timeout.
const LINGER: Duration = Duration::from_millis(100);

/// Output bounds and environment rules for process hooks.
#[derive(Debug, Clone)]
pub(crate) struct ShellLimits {
    /// Stdout beyond this many bytes fails the run.
    pub stdout_cap: usize,
    /// Bytes of stderr kept for the record.
    pub stderr_keep: usize,
    /// Environment variables removed from the hooks' environment (e.g. the API token).
    pub scrub_env: Vec<String>,
}

/// Runs a process hook; fills `outcome` with exit status, stderr excerpt and the timeout flag.
pub(crate) async fn run_shell(
    spec: &ShellSpec,
    payload: &[u8],
    limits: &ShellLimits,
    outcome: &mut HookOutcome,
) -> Result<String, HookError> {
    if spec.entrypoint.is_empty() {
        return Err(HookError::NoEntrypoint);
    }
    let deadline = Instant::now() + spec.timeout;
    let mut command = Command::new(&spec.entrypoint);
    command
        .args(&spec.command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group, so one kill reaches every process the hook started.
        .process_group(0)
        .kill_on_drop(true);
    for name in &limits.scrub_env {
        command.env_remove(name);
    }
    let (mut child, mut adopted) = reaper::spawn(&mut command)
        .map_err(|source| HookError::Spawn { entrypoint: spec.entrypoint.clone(), source })?;
    // The pid is known until the child is reaped, and we have not polled it yet.
    let group = GroupGuard { pgid: child.id() };
    tracing::debug!(entrypoint = %spec.entrypoint, pid = ?group.pgid, "hook started");

    let run = drive(&mut child, &group, &adopted, payload, limits, deadline).await;
    // Whatever happened, nothing the hook started outlives the run: the group now, processes
    // that left it (setsid) when the reaper sweeps after `adopted` is dropped.
    group.kill();
    if run.status.is_some() {
        adopted.reaped();
    }
    drop(adopted);
    outcome.timed_out = run.timed_out;
    if let Some(status) = run.status {
        outcome.exit_code = status.code();
        outcome.signal = status.signal();
    }
    let stderr = run.stderr.as_ref().map(excerpt_text).unwrap_or_default();
    if !stderr.is_empty() {
        outcome.stderr = Some(stderr.clone());
    }
    verdict(spec, run, stderr, limits.stdout_cap)
}

/// Turns what was observed into the run's result, most fundamental failure first.
fn verdict(spec: &ShellSpec, run: Run, stderr: String, cap: usize) -> Result<String, HookError> {
    if run.timed_out {
        return Err(HookError::Timeout(spec.timeout));
    }
    if let Some(e) = run.io_error {
        return Err(HookError::Io(e));
    }
    let stdout = run.stdout.unwrap_or_default();
    if stdout.overflowed {
        return Err(HookError::OutputTooLarge(cap));
    }
    let Some(status) = run.status else {
        return Err(HookError::Io(std::io::Error::other("hook status unknown")));
    };
    if status.success() {
        if spec.log_stderr && !stderr.is_empty() {
            tracing::info!(entrypoint = %spec.entrypoint, %stderr, "hook stderr");
        }
        return Ok(stdout.text());
    }
    match (status.code(), status.signal()) {
        (Some(code), _) => Err(HookError::Exit { code, stderr }),
        (None, Some(signal)) => Err(HookError::Signal { signal, stderr }),
        (None, None) => Err(HookError::Io(std::io::Error::other(format!("unexpected exit status {status}")))),
    }
}

/// What was observed of one process run.
#[derive(Default)]
struct Run {
    status: Option<ExitStatus>,
    stdout: Option<Captured>,
    stderr: Option<Captured>,
    io_error: Option<std::io::Error>,
    timed_out: bool,
}

/// Feeds stdin and drains both pipes while waiting for the child, all until `deadline`.
async fn drive(
    child: &mut Child,
    group: &GroupGuard,
    adopted: &reaper::RunGuard,
    payload: &[u8],
    limits: &ShellLimits,
    deadline: Instant,
) -> Run {
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = async {
        let Some(pipe) = stdout else {
            return Ok(Captured::default());
        };
        let captured = read_capped(pipe, limits.stdout_cap).await;
        if matches!(&captured, Ok(c) if c.overflowed) {
            // Don't wait for a hook that prints forever.
            group.kill();
        }
        captured
    };
    let err = async {
        let Some(pipe) = stderr else {
            return Ok(Captured::default());
        };
        read_excerpt(pipe, limits.stderr_keep).await
    };
    let io = async { tokio::join!(feed(stdin, payload), out, err) };
    tokio::pin!(io);

    let mut run = Run::default();
    let mut io_done = false;
    let linger = tokio::time::sleep(Duration::MAX);
    tokio::pin!(linger);
    let mut lingering = false;
    let finished = tokio::time::timeout_at(deadline, async {
        while run.status.is_none() || !io_done {
            tokio::select! {
                status = child.wait(), if run.status.is_none() => {
                    match status {
                        Ok(s) => run.status = Some(s),
                        Err(e) => { run.io_error = Some(e); return; }
                    }
                    // Background processes left behind would hold the pipes open.
                    group.kill();
                    linger.as_mut().reset(Instant::now() + LINGER);
                    lingering = true;
                }
                () = &mut linger, if lingering && !io_done => {
                    lingering = false;
                    adopted.end();
                }
                results = &mut io, if !io_done => {
                    io_done = true;
                    record_io(&mut run, results);
                }
            }
        }
    })
    .await;
    if finished.is_err() {
        run.timed_out = true;
        group.kill();
    }
    // After a timeout or a wait error: reap the leader and collect what the pipes still hold,
    // bounded in case something escaped the group and keeps a pipe open.
    if run.status.is_none()
        && let Ok(Ok(status)) = tokio::time::timeout(KILL_GRACE, child.wait()).await
    {
        run.status = Some(status);
    }
    if !io_done && let Ok(results) = tokio::time::timeout(KILL_GRACE, &mut io).await {
        record_io(&mut run, results);
    }
    run
}

/// Stores the pipe results in the run, keeping the first I/O error.
fn record_io(
    run: &mut Run,
    (fed, out, err): (std::io::Result<()>, std::io::Result<Captured>, std::io::Result<Captured>),
) {
    for e in [fed.err(), out.as_ref().err().map(clone_io), err.as_ref().err().map(clone_io)].into_iter().flatten() {
        run.io_error.get_or_insert(e);
    }
    run.stdout = out.ok();
    run.stderr = err.ok();
}

/// `io::Error` is not `Clone`; keep its kind and message.
fn clone_io(e: &std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.to_string())
}

/// Writes the payload and closes stdin so the hook sees EOF.
async fn feed(stdin: Option<ChildStdin>, payload: &[u8]) -> std::io::Result<()> {
    let Some(mut stdin) = stdin else {
        return Ok(());
    };
    match stdin.write_all(payload).await {
        // A hook may exit or close stdin without reading it; that is its business.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The hook's process group, killed when the run ends or its future is dropped.
struct GroupGuard {
    /// The group id (the leader's pid); `None` if the child was reaped before we asked.
    pgid: Option<u32>,
}

impl GroupGuard {
    /// Sends SIGKILL to every process in the group; an empty group is not an error.
    ///
    /// Called after the leader is reaped too: pids are allocated cyclically, so the id cannot
    /// have been handed to an unrelated process group in the meantime.
    fn kill(&self) {
        let Some(pgid) = self.pgid.and_then(|p| libc::pid_t::try_from(p).ok()) else {
            return;
        };
        // Never signal init or, via -1, every process we may signal.
        if pgid <= 1 {
            return;
        }
        // SAFETY: kill(2) takes plain integers and has no memory-safety preconditions.
        let rc = unsafe { libc::kill(-pgid, libc::SIGKILL) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                tracing::warn!(pgid, error = %e, "could not kill hook process group");
            }
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
