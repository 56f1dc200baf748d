//! What process hooks leave behind: the hub adopts it, reaps what has exited and kills what a
//! finished run left running.
//!
//! A hook that backgrounds a process and exits leaves it to be re-parented, to init or to the
//! nearest ancestor that is a child subreaper. In one hub two things go wrong:
//! - as PID 1 (a container's entrypoint) the hub *is* that init, and a zombie it never waits for
//!   stays in the process table for good;
//! - a process that called `setsid` has left the hook's process group, so the group kill at the
//!   end of a run misses it and it lives on.
//!
//! [`adopt_orphans`] makes the hub the parent of everything its hooks leave behind (PID 1
//! already is; otherwise it becomes a child subreaper) and starts a sweeper thread. Every hook
//! run carries a marker in its environment ([`RUN_ENV`]) that everything it starts inherits.
//! The sweeper looks at the hub's children that the runtime is not waiting for:
//! - a live one whose run has ended is killed, with its process group, so a `setsid` escapee
//!   takes its own group along; its children are re-parented to the hub and go the same way on
//!   the next sweep, so the whole tree goes;
//! - an exited one (a zombie) is reaped — at once if it was adopted, else once it has waited
//!   [`UNCLAIMED_ZOMBIE`] for a parent's `wait` (a library's own child is reaped by that library
//!   within microseconds; one left that long has nobody waiting for it).
//!
//! A process that cleared its environment carries no marker and is left running: the hub does
//! not kill what it cannot attribute to an ended run. It is reaped once it exits.

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The environment variable that names a hook's run in every process it starts.
pub const RUN_ENV: &str = "SCALEHUB_HOOK_RUN";

/// The longest gap between sweeps; a run's end and `SIGCHLD` bring the next one forward.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How long a zombie the hub did not adopt may wait for its parent's `wait` before it is reaped.
const UNCLAIMED_ZOMBIE: Duration = Duration::from_millis(500);

/// How the hub came to be the parent of its hooks' orphans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// The hub is PID 1 of its PID namespace: every orphan in it comes to the hub.
    Init,
    /// The hub declared itself a child subreaper: orphans of its descendants come to it.
    Subreaper,
}

/// What the sweeper has done since the hub started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaperStats {
    /// Exited processes the hub waited for so they left the process table.
    pub reaped: u64,
    /// Processes still running after their hook's run ended, killed with their group.
    pub killed: u64,
}

/// Makes the hub the parent of every orphan its hooks leave and starts the sweeper thread.
/// Idempotent; the first call decides.
pub fn adopt_orphans() -> io::Result<Adoption> {
    static ADOPTED: OnceLock<Adoption> = OnceLock::new();
    if let Some(adoption) = ADOPTED.get() {
        return Ok(*adoption);
    }
    let adoption = if std::process::id() == 1 {
        Adoption::Init
    } else {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes plain integers and only sets a flag on
        // this process.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Adoption::Subreaper
    };
    let (wake, woken) = sync_channel(1);
    std::thread::Builder::new().name("scalehub-reaper".into()).spawn(move || sweeper(woken))?;
    let _ = WAKE.set(wake);
    ENABLED.store(true, Ordering::Release);
    Ok(*ADOPTED.get_or_init(|| adoption))
}

/// What the sweeper has done so far (zero until [`adopt_orphans`] ran).
pub fn stats() -> ReaperStats {
    ReaperStats { reaped: REAPED.load(Ordering::Relaxed), killed: KILLED.load(Ordering::Relaxed) }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);
static REAPED: AtomicU64 = AtomicU64::new(0);
static KILLED: AtomicU64 = AtomicU64::new(0);
static WAKE: OnceLock<SyncSender<()>> = OnceLock::new();
static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

/// Which runs are in progress and which children the runtime waits for.
#[derive(Default)]
struct Registry {
    live: HashSet<u64>,
    /// Hook processes the runtime reaps itself, never touched here; `true` while their run
    /// lasts. An entry of an ended run stays until the runtime has reaped the process.
    waited: HashMap<u32, bool>,
}

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while the lock was held leaves plain sets behind; they are still consistent enough.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn wake_sweeper() {
    if let Some(wake) = WAKE.get() {
        // A full channel means a sweep is already due.
        let _ = wake.try_send(());
    }
}

/// One hook run as the reaper sees it; ending it (drop) lets the sweeper kill what it left.
pub(crate) struct RunGuard {
    id: u64,
    pid: Option<u32>,
    reaped: bool,
}

impl RunGuard {
    /// The runtime has waited for the run's process: its pid is free for reuse.
    pub(crate) fn reaped(&mut self) {
        self.reaped = true;
    }

    /// Ends the run before the guard goes: what it left running is killed on the next sweep
    /// (e.g. an escapee that holds the hook's stdout open after the hook exited).
    pub(crate) fn end(&self) {
        if ENABLED.load(Ordering::Acquire) {
            registry().live.remove(&self.id);
            wake_sweeper();
        }
    }
}

/// Spawns a hook's process marked with a new run id, registered before the sweeper can see it.
pub(crate) fn spawn(command: &mut Command) -> io::Result<(Child, RunGuard)> {
    let id = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
    command.env(RUN_ENV, id.to_string());
    if !ENABLED.load(Ordering::Acquire) {
        let child = command.spawn()?;
        return Ok((child, RunGuard { id, pid: None, reaped: false }));
    }
    // Held across the spawn: a hook that exits at once must not be reaped by a sweep before it
    // is known to be the runtime's.
    let mut registry = registry();
    let child = command.spawn()?;
    let pid = child.id();
    registry.live.insert(id);
    if let Some(pid) = pid {
        registry.waited.insert(pid, true);
    }
    Ok((child, RunGuard { id, pid, reaped: false }))
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        if !ENABLED.load(Ordering::Acquire) {
            return;
        }
        {
            let mut registry = registry();
            registry.live.remove(&self.id);
            if let Some(pid) = self.pid {
                if self.reaped {
                    registry.waited.remove(&pid);
                } else if let Some(live) = registry.waited.get_mut(&pid) {
                    // Dropped before it was waited for: the runtime reaps it in the background.
                    *live = false;
                }
            }
        }
        wake_sweeper();
    }
}

/// The sweeper thread: a sweep per wake-up, at least every [`SWEEP_EVERY`].
fn sweeper(woken: Receiver<()>) {
    forward_sigchld();
    let mut sweeper = Sweeper::default();
    loop {
        match woken.recv_timeout(SWEEP_EVERY) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if let Err(e) = sweeper.sweep() {
            tracing::warn!(error = %e, "could not look for hook orphans");
        }
    }
}

/// Brings a sweep forward whenever a child exits, if a tokio runtime is there to listen.
fn forward_sigchld() {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async {
        let Ok(mut sigchld) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()) else {
            return;
        };
        while sigchld.recv().await.is_some() {
            wake_sweeper();
        }
    });
}

/// What one sweep remembers for the next.
#[derive(Default)]
struct Sweeper {
    /// Children seen running with a run marker that the runtime does not wait for: orphans of
    /// hooks, reaped as soon as they exit.
    adopted: HashSet<u32>,
    /// Other zombies, with when each was first seen.
    unclaimed: HashMap<u32, Instant>,
}

impl Sweeper {
    /// One pass over the hub's children.
    fn sweep(&mut self) -> io::Result<()> {
        let children = children()?;
        let mut registry = registry();
        registry.waited.retain(|pid, live| *live || children.contains(pid));
        self.adopted.retain(|pid| children.contains(pid));
        self.unclaimed.retain(|pid, _| children.contains(pid));
        let now = Instant::now();
        for &pid in &children {
            if registry.waited.contains_key(&pid) {
                continue;
            }
            let Some(process) = Process::read(pid) else {
                continue;
            };
            if process.zombie {
                let first_seen = *self.unclaimed.entry(pid).or_insert(now);
                let due = self.adopted.contains(&pid) || now.duration_since(first_seen) >= UNCLAIMED_ZOMBIE;
                if due && reap(pid) {
                    self.adopted.remove(&pid);
                    self.unclaimed.remove(&pid);
                }
                continue;
            }
            let Some(run) = process.run else {
                continue;
            };
            self.adopted.insert(pid);
            if !registry.live.contains(&run) {
                kill_tree(pid, process.group);
            }
        }
        Ok(())
    }
}

/// Waits for one exited child without blocking.
fn reap(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    let mut status = 0;
    // SAFETY: waitpid writes only to `status`, a live local.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    if rc == pid {
        REAPED.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pid, "reaped an orphan of a hook");
    }
    rc == pid
}

/// Kills a process its run left behind, and its group when it leads one.
fn kill_tree(pid: u32, group: Option<u32>) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    if group == Some(pid as u32) {
        // SAFETY: kill(2) takes plain integers.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    // SAFETY: as above.
    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
        KILLED.fetch_add(1, Ordering::Relaxed);
        tracing::info!(pid, "killed a process a finished hook left running");
    }
}

/// The pids of this process's children (of all its threads).
fn children() -> io::Result<HashSet<u32>> {
    let mut pids = HashSet::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let path = task?.path().join("children");
        // A thread may end between the listing and the read.
        let Ok(list) = std::fs::read_to_string(path) else {
            continue;
        };
        pids.extend(list.split_ascii_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    Ok(pids)
}

/// What `/proc` tells of one child.
struct Process {
    zombie: bool,
    group: Option<u32>,
    /// The hook run it descends from, from its environment (a zombie's is gone).
    run: Option<u64>,
}

impl Process {
    fn read(pid: u32) -> Option<Process> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
        let (_, rest) = stat.rsplit_once(") ")?;
        let mut fields = rest.split_ascii_whitespace();
        let state = fields.next()?;
        let group = fields.nth(1).and_then(|g| g.parse().ok());
        let zombie = state == "Z" || state == "X";
        let run = if zombie { None } else { run_of(pid) };
        Some(Process { zombie, group, run })
    }
}

/// The run marker in a process's environment, if it has one.
fn run_of(pid: u32) -> Option<u64> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{RUN_ENV}=");
    environ
        .split(|b| *b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| value.parse().ok())
}
