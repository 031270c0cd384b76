//! Counters that survive crashes.
//!
//! A sender's counter is the AEAD nonce, so it must never repeat under one key,
//! not even after a crash. Following OSCORE (RFC 8613, App. B.1.1), the sender
//! reserves counters in blocks: before it uses the first counter of a block it
//! durably records the end of the block (the *mark*) in a [`CounterStore`]. After
//! a restart it starts at the recorded mark, skipping at most one block of
//! unused counters and never reusing one.
//!
//! A receiver can persist its replay state the same way: before it accepts a
//! counter at or above its recorded mark, it records a new mark a block ahead;
//! after a restart, every counter below the mark is treated as seen. This may
//! reject up to one block of genuine messages after a crash, and never accepts
//! a replay. [`Endpoint::flush`](crate::Endpoint::flush) records exact marks on a
//! clean shutdown.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::envelope::MAX_COUNTER;
use crate::error::CounterError;
use crate::keys::SenderId;

/// The default block of counters reserved at a time.
pub const DEFAULT_BLOCK: u64 = 1024;

/// Whose counter a mark belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// This endpoint's own sending counter.
    Send,
    /// The replay state for a remote sender.
    Receive,
}

/// What a mark is for: a role, a key epoch and a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterScope {
    /// Sending or receiving.
    pub role: Role,
    /// The key epoch.
    pub epoch: u32,
    /// The sender whose counter it is.
    pub sender: SenderId,
}

/// Durable storage of counter marks.
///
/// [`CounterStore::store`] must not return before the mark is durable: a sender
/// uses counters below the mark as soon as it returns.
///
/// A store holds one endpoint's marks, for that endpoint's next start: give
/// every live endpoint its own. Receive marks are keyed by the remote sender
/// only, so two receivers sharing a store would start their windows at each
/// other's marks (refusing messages they never saw) and could lower each
/// other's (accepting a replay after a restart). [`FileCounterStore`] locks
/// its file for that reason.
pub trait CounterStore: Send {
    /// The recorded mark of `scope`, or 0 when there is none.
    fn load(&mut self, scope: &CounterScope) -> Result<u64, CounterError>;

    /// Durably records `mark` for `scope`.
    fn store(&mut self, scope: &CounterScope, mark: u64) -> Result<(), CounterError>;
}

/// Counter marks kept in memory; clones share them.
///
/// Counters survive a drop and rebuild of the endpoint (as in a test that
/// simulates a restart), not a process crash: use [`FileCounterStore`] for that.
/// Like any store, it belongs to one live endpoint at a time (see
/// [`CounterStore`]); hand a clone to the endpoint's successor, or keep one to
/// read the marks. As a safeguard, two senders with one sender id that share
/// it in one thread continue above each other's reservations; that does not
/// make sharing safe from two threads, nor for receivers.
#[derive(Debug, Clone, Default)]
pub struct MemoryCounterStore(Arc<Mutex<HashMap<CounterScope, u64>>>);

impl MemoryCounterStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryCounterStore::default()
    }
}

impl CounterStore for MemoryCounterStore {
    fn load(&mut self, scope: &CounterScope) -> Result<u64, CounterError> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map.get(scope).copied().unwrap_or(0))
    }

    fn store(&mut self, scope: &CounterScope, mark: u64) -> Result<(), CounterError> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(*scope, mark);
        Ok(())
    }
}

/// Counter marks in a file, replaced atomically and synced before use.
///
/// Each update writes the whole file to `<path>.tmp` with mode 0600, syncs it,
/// renames it over `<path>` and syncs the directory, so a crash at any instant
/// leaves either the old or the new file. The format is text:
///
/// ```text
/// mqseal-counters v1
/// send 3 726f626f742d31 2048
/// recv 3 73656e736f722d39 4096
/// ```
///
/// (role, epoch, sender id in hex, mark), one scope per line.
#[derive(Debug)]
pub struct FileCounterStore {
    path: PathBuf,
    marks: HashMap<CounterScope, u64>,
    /// Held for the store's lifetime: one store per file, in any process.
    _lock: fs::File,
}

const FILE_MAGIC: &str = "mqseal-counters v1";
/// How long [`FileCounterStore::open`] waits for a lock held only by a
/// process being spawned, and how often it looks again.
const LOCK_WAIT: Duration = Duration::from_millis(250);
const LOCK_RETRY: Duration = Duration::from_millis(5);

impl FileCounterStore {
    /// Opens the store at `path`, creating it when it does not exist.
    ///
    /// The store takes an exclusive lock on `<path>.lock` for as long as it
    /// lives: two stores on one file (in one process or two) would overwrite
    /// each other's marks and reuse counters, so the second is refused.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, CounterError> {
        let path = path.as_ref().to_path_buf();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| store_err(&path, e))?;
        // A process that another thread of this program is spawning holds a
        // copy of every descriptor, the lock's too, until it executes its
        // program: a store closed and reopened meanwhile would find its own
        // lock taken. So a taken lock is retried for a short while before
        // the file counts as in use.
        let mut waited = Duration::ZERO;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) if waited < LOCK_WAIT => {
                    std::thread::sleep(LOCK_RETRY);
                    waited += LOCK_RETRY;
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(CounterError::InUse {
                        path: path.display().to_string(),
                    });
                }
                Err(fs::TryLockError::Error(e)) => return Err(store_err(&path, e)),
            }
        }
        let marks = match fs::read_to_string(&path) {
            Ok(text) => parse_file(&path, &text)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(store_err(&path, e)),
        };
        Ok(FileCounterStore {
            path,
            marks,
            _lock: lock,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_all(&self) -> Result<(), CounterError> {
        let mut lines: Vec<_> = self.marks.iter().collect();
        lines.sort();
        let mut text = String::with_capacity(32 + lines.len() * 48);
        text.push_str(FILE_MAGIC);
        text.push('\n');
        for (scope, mark) in lines {
            let role = match scope.role {
                Role::Send => "send",
                Role::Receive => "recv",
            };
            text.push_str(&format!(
                "{role} {} {} {mark}\n",
                scope.epoch,
                hex::encode(scope.sender.as_bytes())
            ));
        }
        crate::fsutil::replace_private(&self.path, text.as_bytes())
            .map_err(|e| store_err(&self.path, e))
    }

    fn sync_dir(&self) -> Result<(), CounterError> {
        crate::fsutil::sync_parent(&self.path).map_err(|err| store_err(&self.path, err))
    }
}

impl CounterStore for FileCounterStore {
    fn load(&mut self, scope: &CounterScope) -> Result<u64, CounterError> {
        Ok(self.marks.get(scope).copied().unwrap_or(0))
    }

    fn store(&mut self, scope: &CounterScope, mark: u64) -> Result<(), CounterError> {
        let old = self.marks.insert(*scope, mark);
        if let Err(e) = self.write_all() {
            // The file was not replaced: memory goes back to what the file holds.
            match old {
                Some(m) => self.marks.insert(*scope, m),
                None => self.marks.remove(scope),
            };
            return Err(e);
        }
        // The file holds the new mark; it is durable once the directory is synced.
        self.sync_dir()
    }
}

fn store_err(path: &Path, source: io::Error) -> CounterError {
    CounterError::Store {
        path: path.display().to_string(),
        source,
    }
}

fn parse_file(path: &Path, text: &str) -> Result<HashMap<CounterScope, u64>, CounterError> {
    let corrupt = |line, reason| CounterError::Corrupt {
        path: path.display().to_string(),
        line,
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some(FILE_MAGIC) {
        return Err(corrupt(1, "not an mqseal counter file (bad first line)"));
    }
    let mut marks = HashMap::new();
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        if line.is_empty() {
            continue;
        }
        let mut f = line.split(' ');
        let (Some(role), Some(epoch), Some(sid), Some(mark), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(corrupt(n, "expected: role epoch sender-hex mark"));
        };
        let role = match role {
            "send" => Role::Send,
            "recv" => Role::Receive,
            _ => return Err(corrupt(n, "role must be send or recv")),
        };
        let epoch = epoch.parse().map_err(|_| corrupt(n, "bad epoch"))?;
        let sid = hex::decode(sid).map_err(|_| corrupt(n, "bad sender id hex"))?;
        let sender = SenderId::new(&sid).map_err(|_| corrupt(n, "bad sender id length"))?;
        let mark: u64 = mark.parse().map_err(|_| corrupt(n, "bad mark"))?;
        if mark > MAX_COUNTER + 1 {
            return Err(corrupt(n, "mark out of range"));
        }
        let scope = CounterScope {
            role,
            epoch,
            sender,
        };
        if marks.insert(scope, mark).is_some() {
            return Err(corrupt(n, "the same scope appears twice"));
        }
    }
    Ok(marks)
}

/// A sender's counter for one epoch: counters below `reserved` are durable.
#[derive(Debug, Clone)]
pub(crate) struct SendCounter {
    next: u64,
    reserved: u64,
}

impl SendCounter {
    /// Resumes from the store's mark.
    pub(crate) fn resume(
        store: &mut dyn CounterStore,
        scope: &CounterScope,
    ) -> Result<Self, CounterError> {
        let mark = store.load(scope)?;
        Ok(SendCounter {
            next: mark,
            reserved: mark,
        })
    }

    /// The next counter, reserving a block first when needed. `scope` is
    /// built only then, or for the error: most calls touch neither.
    #[inline(always)]
    pub(crate) fn next(
        &mut self,
        store: &mut dyn CounterStore,
        scope: impl FnOnce() -> CounterScope,
        block: u64,
    ) -> Result<u64, CounterError> {
        // Whenever `next < reserved`, `reserve` set `reserved` (to at most
        // `MAX_COUNTER + 1`), so the counter is in range; `resume` and
        // `drop_reservation` set `reserved = next`, which reserves first.
        if self.next >= self.reserved {
            self.reserve(store, scope(), block)?;
        }
        let c = self.next;
        self.next += 1;
        Ok(c)
    }

    /// [`SendCounter::next`] past its reservation: checks the counter's
    /// range and stores the next mark.
    #[cold]
    #[inline(never)]
    fn reserve(
        &mut self,
        store: &mut dyn CounterStore,
        scope: CounterScope,
        block: u64,
    ) -> Result<(), CounterError> {
        // Another counter over the same scope (a second endpoint with this
        // sender id on a shared store) may have reserved past us: continue
        // above its mark, never inside its block.
        let stored = store.load(&scope)?;
        if stored > self.next {
            self.next = stored;
        }
        if self.next > MAX_COUNTER {
            return Err(CounterError::Exhausted { epoch: scope.epoch });
        }
        let mark = self.next.saturating_add(block).min(MAX_COUNTER + 1);
        store.store(&scope, mark)?;
        self.reserved = mark;
        Ok(())
    }

    /// The next counter that would be used.
    pub(crate) fn peek(&self) -> u64 {
        self.next
    }

    /// Forgets the reservation: the next counter reserves a block again
    /// before it is used. Call before lowering the stored mark.
    fn drop_reservation(&mut self) {
        self.reserved = self.next;
    }

    /// Lowers the stored mark to the next counter (on a clean shutdown, so
    /// that a restart skips none), unless another counter over the same scope
    /// reserved past this one's block: then the mark stays, and this counter
    /// continues above it.
    pub(crate) fn flush(
        &mut self,
        store: &mut dyn CounterStore,
        scope: &CounterScope,
    ) -> Result<(), CounterError> {
        let own = self.reserved;
        // Forget the reservation before lowering the mark: if the store
        // fails, the next counter reserves again before it is used, whatever
        // the store holds.
        self.drop_reservation();
        if store.load(scope)? == own {
            store.store(scope, self.next)?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn set_next_for_test(&mut self, next: u64) {
        self.next = next;
        self.reserved = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> CounterScope {
        CounterScope {
            role: Role::Send,
            epoch: 1,
            sender: SenderId::new(b"s").unwrap(),
        }
    }

    #[test]
    fn blocks_are_reserved_before_use() {
        let mut store = MemoryCounterStore::new();
        let mut c = SendCounter::resume(&mut store, &scope()).unwrap();
        assert_eq!(c.next(&mut store, scope, 4).unwrap(), 0);
        assert_eq!(store.load(&scope()).unwrap(), 4);
        for want in 1..4 {
            assert_eq!(c.next(&mut store, scope, 4).unwrap(), want);
        }
        assert_eq!(c.next(&mut store, scope, 4).unwrap(), 4);
        assert_eq!(store.load(&scope()).unwrap(), 8);
        // A restart resumes at the mark: 5..8 are skipped, none reused.
        let mut c2 = SendCounter::resume(&mut store, &scope()).unwrap();
        assert_eq!(c2.next(&mut store, scope, 4).unwrap(), 8);
    }

    /// Two counters over one scope on a shared store (two endpoints with the
    /// same sender id, one rebuilt before the other was dropped) never hand
    /// out the same counter: each reserves above the other's mark.
    #[test]
    fn counters_sharing_a_store_never_overlap() {
        let mut store = MemoryCounterStore::new();
        let mut a = SendCounter::resume(&mut store, &scope()).unwrap();
        let mut seen = std::collections::HashSet::new();
        assert!(seen.insert(a.next(&mut store, scope, 4).unwrap()));
        let mut b = SendCounter::resume(&mut store, &scope()).unwrap();
        for round in 0..40 {
            for c in [&mut a, &mut b] {
                let n = c.next(&mut store, scope, 4).unwrap();
                assert!(seen.insert(n), "counter {n} handed out twice");
            }
            // A clean-shutdown flush of one of them lowers no mark the other
            // reserved past.
            if round % 7 == 3 {
                a.flush(&mut store, &scope()).unwrap();
            }
        }
        // Alone, a flush lowers the mark to the next counter.
        let mut store = MemoryCounterStore::new();
        let mut c = SendCounter::resume(&mut store, &scope()).unwrap();
        c.next(&mut store, scope, 4).unwrap();
        assert_eq!(store.load(&scope()).unwrap(), 4);
        c.flush(&mut store, &scope()).unwrap();
        assert_eq!(store.load(&scope()).unwrap(), 1);
        assert_eq!(c.next(&mut store, scope, 4).unwrap(), 1);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_wrap() {
        let mut store = MemoryCounterStore::new();
        let mut c = SendCounter::resume(&mut store, &scope()).unwrap();
        c.set_next_for_test(MAX_COUNTER);
        assert_eq!(c.next(&mut store, scope, 10).unwrap(), MAX_COUNTER);
        assert!(matches!(
            c.next(&mut store, scope, 10),
            Err(CounterError::Exhausted { epoch: 1 })
        ));
    }

    #[test]
    fn file_store_round_trip_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counters");
        let mut s = FileCounterStore::open(&path).unwrap();
        s.store(&scope(), 2048).unwrap();
        drop(s);
        let mut s2 = FileCounterStore::open(&path).unwrap();
        assert_eq!(s2.load(&scope()).unwrap(), 2048);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn one_store_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counters");
        let first = FileCounterStore::open(&path).unwrap();
        let err = FileCounterStore::open(&path).unwrap_err();
        assert!(matches!(err, CounterError::InUse { .. }), "{err}");
        drop(first);
        FileCounterStore::open(&path).unwrap();
    }

    #[test]
    fn reopening_while_another_thread_spawns_processes_is_not_in_use() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counters");
        let stop = Arc::new(AtomicBool::new(false));
        let (started, spawning) = std::sync::mpsc::channel();
        let spawner = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Each child briefly holds a copy of the lock's descriptor.
                    let _ = std::process::Command::new("true").status();
                    let _ = started.send(());
                }
            })
        };
        spawning.recv().unwrap();
        let opened = (0..300).map(|_| FileCounterStore::open(&path).map(drop));
        let failures = opened.filter(Result::is_err).count();
        stop.store(true, Ordering::Relaxed);
        spawner.join().unwrap();
        assert_eq!(failures, 0);
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counters");
        fs::write(&path, "mqseal-counters v1\nsend x 73 10\n").unwrap();
        let err = FileCounterStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("bad epoch"), "{err}");
        fs::write(&path, "garbage").unwrap();
        assert!(FileCounterStore::open(&path).is_err());
    }
}
