//! One thread per link direction: read frames from the source TAP, hold them in a
//! deadline heap (the delay line) and a FIFO (the bottleneck), write them out on time.
//!
//! The thread sleeps in `ppoll` on the source descriptor with a nanosecond timeout
//! equal to the next deadline, with its timer slack set to 1 ns so wake-ups are on
//! time to a few microseconds. Frames that need no holding are written straight from
//! the read buffer; held frames live in pooled buffers, so the steady state allocates
//! nothing.

use std::collections::{BinaryHeap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::control::{Counters, EngineControl};
use super::model::{DirectionModel, Drop, Verdict};

/// Frames read per wake-up before deadlines are checked again.
const BATCH: usize = 64;
/// Longest sleep, so stop requests and impairment changes are noticed.
const IDLE: Duration = Duration::from_millis(20);
/// Capacity of pooled buffers: any frame of a 1500-byte-MTU link fits.
const POOLED: usize = 2048;

/// A frame waiting in the delay line, ordered so the heap pops the earliest first.
struct Held {
    due: u64,
    seq: u64,
    buf: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// A frame still in the read buffer, or in a buffer of its own.
enum Frame<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl Frame<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Frame::Borrowed(f) => f,
            Frame::Owned(b) => b,
        }
    }

    fn recycle(self, q: &mut Queues) {
        if let Frame::Owned(b) = self {
            q.recycle(b);
        }
    }
}

/// Everything a direction's thread owns.
pub(crate) struct Pump {
    pub src: Arc<OwnedFd>,
    pub dst: Arc<OwnedFd>,
    pub model: DirectionModel,
    pub control: EngineControl,
    pub link: usize,
    pub dir: usize,
    pub stop: Arc<AtomicBool>,
    pub epoch: Instant,
}

/// The pump's queues, apart from the read buffer so frames can be borrowed from it.
struct Queues {
    heap: BinaryHeap<Held>,
    fifo: VecDeque<(u64, Vec<u8>)>,
    pool: Vec<Vec<u8>>,
    seq: u64,
    dst: i32,
    /// The destination is gone (its namespace was deleted).
    dst_gone: bool,
}

impl Queues {
    fn copy(&mut self, frame: &[u8]) -> Vec<u8> {
        let mut b = if frame.len() <= POOLED {
            self.pool.pop().unwrap_or_else(|| Vec::with_capacity(POOLED))
        } else {
            Vec::with_capacity(frame.len())
        };
        b.clear();
        b.extend_from_slice(frame);
        b
    }

    fn recycle(&mut self, b: Vec<u8>) {
        if b.capacity() == POOLED {
            self.pool.push(b);
        }
    }

    fn write(&mut self, c: &Counters, frame: &[u8]) {
        // SAFETY: writes `frame.len()` initialised bytes from a live slice.
        let n = unsafe { libc::write(self.dst, frame.as_ptr().cast(), frame.len()) };
        if n < 0 {
            Counters::add(&c.write_errors, 1);
            if io::Error::last_os_error().raw_os_error() == Some(libc::EBADFD) {
                self.dst_gone = true;
            }
        } else {
            Counters::add(&c.tx, 1);
        }
    }
}

impl Pump {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Runs until stopped or a device disappears.
    pub(super) fn run(mut self) -> io::Result<()> {
        // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        realtime();
        let control = self.control.clone();
        let shared = &control.dirs[self.link][self.dir];
        let mut q = Queues {
            heap: BinaryHeap::new(),
            fifo: VecDeque::new(),
            pool: Vec::new(),
            seq: 0,
            dst: self.dst.as_raw_fd(),
            dst_gone: false,
        };
        let mut scratch = vec![0u8; 65536];
        let mut generation = 0;
        let src = self.src.as_raw_fd();
        while !self.stop.load(Ordering::Relaxed) && !q.dst_gone {
            if let Some(imp) = shared.take_update(&mut generation) {
                self.model.set(imp);
            }
            self.release(&mut q, self.now());
            let mut got = 0;
            while got < BATCH {
                // SAFETY: reads into a live buffer of the given length.
                let n = unsafe { libc::read(src, scratch.as_mut_ptr().cast(), scratch.len()) };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EAGAIN) => break,
                        Some(libc::EINTR) => continue,
                        // The device went away with its namespace: this link is over.
                        Some(libc::EBADFD) | Some(libc::EIO) => return Ok(()),
                        _ => return Err(e),
                    }
                }
                got += 1;
                let now = self.now();
                self.arrive(&mut q, now, &scratch[..n as usize]);
            }
            // No busy-polling: on two cores a spinning pump steals the CPU the
            // endpoints need (measured: 20 µs added RTT without, 70–400 µs with).
            if got > 0 {
                continue;
            }
            let now = self.now();
            let next = [q.heap.peek().map(|h| h.due), q.fifo.front().map(|f| f.0)].into_iter().flatten().min();
            let wait = next.map_or(IDLE, |n| Duration::from_nanos(n.saturating_sub(now)).min(IDLE));
            if !wait.is_zero() {
                poll_in(src, wait)?;
            }
        }
        Ok(())
    }

    fn arrive(&mut self, q: &mut Queues, now: u64, frame: &[u8]) {
        let c = &self.control.dirs[self.link][self.dir].counters;
        Counters::add(&c.rx, 1);
        match self.model.arrive(now, frame.len()) {
            Verdict::Dropped(Drop::Mtu) => Counters::add(&c.drop_mtu, 1),
            Verdict::Dropped(_) => Counters::add(&c.drop_loss, 1),
            Verdict::Pass { first, second } => {
                if second.is_some() {
                    Counters::add(&c.duplicated, 1);
                }
                for t in std::iter::once(first).chain(second) {
                    if t <= now {
                        self.bottleneck(q, now, t, Frame::Borrowed(frame));
                    } else {
                        let buf = q.copy(frame);
                        q.seq += 1;
                        q.heap.push(Held { due: t, seq: q.seq, buf });
                    }
                }
            }
        }
    }

    /// A frame leaves the delay line at `t` and enters the bottleneck. A borrowed
    /// frame is copied into a pooled buffer only if it has to wait.
    fn bottleneck(&mut self, q: &mut Queues, now: u64, t: u64, frame: Frame<'_>) {
        let c = &self.control.dirs[self.link][self.dir].counters;
        match self.model.bottleneck(t, frame.bytes().len()) {
            None => {
                Counters::add(&c.drop_queue, 1);
                frame.recycle(q);
            }
            Some(dep) if dep <= now && q.fifo.is_empty() => {
                q.write(c, frame.bytes());
                frame.recycle(q);
            }
            Some(dep) => {
                let b = match frame {
                    Frame::Borrowed(f) => q.copy(f),
                    Frame::Owned(b) => b,
                };
                q.fifo.push_back((dep, b));
            }
        }
    }

    /// Moves due frames from the delay line to the bottleneck and writes due frames.
    fn release(&mut self, q: &mut Queues, now: u64) {
        while q.heap.peek().is_some_and(|h| h.due <= now) {
            let Some(h) = q.heap.pop() else { break };
            self.control.dirs[self.link][self.dir].counters.released_late(now - h.due);
            self.bottleneck(q, now, h.due, Frame::Owned(h.buf));
        }
        let c = &self.control.dirs[self.link][self.dir].counters;
        while q.fifo.front().is_some_and(|f| f.0 <= now) {
            let Some((due, b)) = q.fifo.pop_front() else {
                break;
            };
            c.released_late(now - due);
            q.write(c, &b);
            q.recycle(b);
        }
    }
}

/// Asks for a low real-time priority, as netem's softirq effectively has: on a busy
/// machine (two cores shared with the endpoints and a compiler, as in CI) a normal
/// thread woke up to 0.5 ms late and that lateness showed as added delay. The pump
/// never busy-polls, and the kernel's real-time throttling bounds it anyway. Where
/// the scheduler refuses (no CAP_SYS_NICE), the pump runs as a normal thread and its
/// lateness counters say what that costs.
fn realtime() {
    let p = libc::sched_param { sched_priority: 10 };
    // SAFETY: pid 0 is the calling thread; `p` is a valid sched_param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) } != 0 {
        tracing::debug!("impairment pump stays at normal priority: {}", io::Error::last_os_error());
    }
}

/// Waits until `fd` is readable or `wait` passes.
fn poll_in(fd: i32, wait: Duration) -> io::Result<()> {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    let ts = libc::timespec { tv_sec: wait.as_secs() as libc::time_t, tv_nsec: wait.subsec_nanos() as libc::c_long };
    // SAFETY: one valid pollfd and a valid timespec; no signal mask change.
    let rc = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    Ok(())
}
