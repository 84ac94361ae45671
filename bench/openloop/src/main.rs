//! openloop: sends HTTP requests at a fixed rate, whatever the server's answers take, and
//! reports latency percentiles measured from each request's scheduled start (a slow answer
//! delays nothing and hides nothing: no coordinated omission, unlike wrk).
//!
//! It must cost little CPU: on a 2-core machine it shares the CPUs with the broker and the
//! server under test, so each microsecond it spends per request is taken from them. Hence
//! one thread and one epoll loop (no runtime, no thread hand-offs), persistent HTTP/1.1
//! connections, requests rendered once, a response parser that reads the status line and
//! Content-Length (or chunks) and nothing more, and no allocation per request: about one
//! `write`, one `read` and a share of an `epoll_pwait2` per request.
//!
//! Request i is due at start + i/rate. When it is due, it goes out on a free connection;
//! if every connection is busy it waits for the first one to free up, and its latency
//! still counts from its due time. Non-2xx answers, transport errors and answers missing
//! 30 s after the end count as failed. Prints one JSON object (the benchmark reads it).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::exit;
use std::time::{Duration, Instant};

struct Args {
    host: String,
    rate: f64,
    duration: Duration,
    conns: usize,
    ads: usize,
    path: Option<String>,
    get: bool,
    slack: Duration,
}

fn usage(message: &str) -> ! {
    eprintln!(
        "{message}\nusage: openloop -url http://host:port -rate N -duration 10s \
         [-conns 64] [-ads 1000] [-path /healthz] [-get] [-slack-us 1]"
    );
    exit(2)
}

fn bad_value(flag: &str, value: &str) -> ! {
    usage(&format!("bad value for {flag}: {value}"))
}

fn parse_duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|v| *v > 0.0)
        .map(|v| Duration::from_secs_f64(v * scale))
}

fn parse_args() -> Args {
    let mut args = Args {
        host: "127.0.0.1:8080".into(),
        rate: 1000.0,
        duration: Duration::from_secs(10),
        conns: 64,
        ads: 1000,
        path: None,
        get: false,
        slack: Duration::from_micros(1),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let name = flag.trim_start_matches('-').to_string();
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (name, None),
        };
        if name == "get" {
            args.get = true;
            continue;
        }
        let value = inline
            .or_else(|| it.next())
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match name.as_str() {
            "url" => {
                let rest = value
                    .strip_prefix("http://")
                    .unwrap_or_else(|| bad_value(&flag, &value));
                args.host = rest.trim_end_matches('/').to_string();
                if args.host.is_empty() || args.host.contains('/') {
                    bad_value(&flag, &value);
                }
            }
            "rate" => {
                args.rate = value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| *r > 0.0)
                    .unwrap_or_else(|| bad_value(&flag, &value))
            }
            "duration" => {
                args.duration = parse_duration(&value).unwrap_or_else(|| bad_value(&flag, &value))
            }
            "conns" => {
                args.conns = value
                    .parse::<usize>()
                    .ok()
                    .filter(|c| *c > 0)
                    .unwrap_or_else(|| bad_value(&flag, &value))
            }
            "ads" => {
                args.ads = value
                    .parse::<usize>()
                    .ok()
                    .filter(|a| *a > 0)
                    .unwrap_or_else(|| bad_value(&flag, &value))
            }
            "path" => args.path = Some(value),
            "slack-us" => {
                args.slack = Duration::from_micros(
                    value
                        .parse::<u64>()
                        .unwrap_or_else(|_| bad_value(&flag, &value)),
                )
            }
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    args
}

#[derive(Debug, PartialEq)]
enum Parsed {
    Incomplete,
    Done { status: u16, closing: bool },
    Bad,
}

const MAX_RESPONSE: usize = 1 << 20;

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if first.is_ascii_whitespace() {
            b = rest
        } else {
            break;
        }
    }
    while let [rest @ .., last] = b {
        if last.is_ascii_whitespace() {
            b = rest
        } else {
            break;
        }
    }
    b
}

/// One whole HTTP/1.1 response in `buf`? Only what the benchmark needs is read: the status,
/// where the body ends (Content-Length or chunked) and whether the server closes.
fn parse_response(buf: &[u8]) -> Parsed {
    let Some(head_end) = find(buf, b"\r\n\r\n", 0) else {
        return if buf.len() > MAX_RESPONSE {
            Parsed::Bad
        } else {
            Parsed::Incomplete
        };
    };
    if buf.len() < 12 || !buf.starts_with(b"HTTP/1.") || buf[8] != b' ' {
        return Parsed::Bad;
    }
    let Some(status) = std::str::from_utf8(&buf[9..12])
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Parsed::Bad;
    };
    let (mut length, mut chunked, mut closing) = (None, false, false);
    let first_line_end = find(buf, b"\r\n", 0).unwrap_or(head_end);
    for line in buf[(first_line_end + 2).min(head_end)..head_end].split(|&c| c == b'\n') {
        let line = trim(line);
        if line.is_empty() {
            continue;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return Parsed::Bad;
        };
        let (name, value) = (trim(&line[..colon]), trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            match std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
            {
                Some(n) => length = Some(n),
                None => return Parsed::Bad,
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value.eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            closing = value.eq_ignore_ascii_case(b"close");
        }
    }
    let body = head_end + 4;
    let end = if chunked {
        match chunks_end(buf, body) {
            Ok(Some(end)) => end,
            Ok(None) => return Parsed::Incomplete,
            Err(()) => return Parsed::Bad,
        }
    } else if let Some(n) = length {
        body + n
    } else if status == 204 || status == 304 || status < 200 {
        body
    } else {
        return Parsed::Bad; // a body delimited by the connection's end: not HTTP/1.1 keep-alive
    };
    match buf.len() {
        n if n < end => Parsed::Incomplete,
        n if n == end => Parsed::Done { status, closing },
        _ => Parsed::Bad, // bytes after the answer: none were asked for
    }
}

fn chunks_end(buf: &[u8], mut pos: usize) -> Result<Option<usize>, ()> {
    loop {
        let Some(line_end) = find(buf, b"\r\n", pos) else {
            return Ok(None);
        };
        let size_text = buf[pos..line_end]
            .split(|&c| c == b';')
            .next()
            .unwrap_or_default();
        let size = std::str::from_utf8(trim(size_text))
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or(())?;
        pos = line_end + 2;
        if size == 0 {
            // optional trailers, then an empty line
            if buf.get(pos..pos + 2) == Some(b"\r\n") {
                return Ok(Some(pos + 2));
            }
            return Ok(find(buf, b"\r\n\r\n", pos).map(|e| e + 4));
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        pos += size + 2;
    }
}

struct Conn {
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    request: Option<usize>,
}

struct Loop {
    epoll: i32,
    host: String,
    conns: Vec<Conn>,
}

impl Loop {
    fn connect(&mut self, c: usize) {
        self.conns[c].stream = None; // closing the socket also removes it from the epoll set
        self.conns[c].buf.clear();
        let stream = match TcpStream::connect(&self.host) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("connect {}: {e}", self.host);
                return;
            }
        };
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream.set_nonblocking(true).expect("O_NONBLOCK");
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: c as u64,
        };
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll,
                libc::EPOLL_CTL_ADD,
                stream.as_raw_fd(),
                &mut event,
            )
        };
        assert_eq!(rc, 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        self.conns[c].stream = Some(stream);
    }

    /// Sends `bytes` on connection `c`; false if the connection is broken.
    fn send(&mut self, c: usize, bytes: &[u8]) -> bool {
        let Some(stream) = self.conns[c].stream.as_mut() else {
            return false;
        };
        // A request of ~100 bytes on an idle connection fits the socket buffer at once.
        matches!(stream.write(bytes), Ok(n) if n == bytes.len())
    }

    /// Reads what arrived on `c`: None while the answer is incomplete, else whether it was a
    /// 2xx (the connection is ready for the next request, reconnected if needed).
    fn receive(&mut self, c: usize, scratch: &mut [u8]) -> Option<bool> {
        let conn = &mut self.conns[c];
        let stream = conn.stream.as_mut()?;
        let outcome = loop {
            match stream.read(scratch) {
                Ok(0) => break Some(false),
                Ok(n) => {
                    conn.buf.extend_from_slice(&scratch[..n]);
                    if n < scratch.len() {
                        break None;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break Some(false),
            }
        };
        if let Some(ok) = outcome {
            if conn.request.is_some() {
                self.connect(c);
                return Some(ok);
            }
            self.connect(c); // the server closed an idle connection
            return None;
        }
        match parse_response(&conn.buf) {
            Parsed::Incomplete => None,
            Parsed::Done { status, closing } => {
                conn.buf.clear();
                if closing {
                    self.connect(c);
                }
                Some((200..300).contains(&status))
            }
            Parsed::Bad => {
                self.connect(c);
                Some(false)
            }
        }
    }
}

fn epoll_wait(epoll: i32, events: &mut [libc::epoll_event], timeout: Option<Duration>) -> usize {
    let spec = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let spec_ptr = spec
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::timespec);
    // epoll_pwait2 (Linux 5.11): a timeout in ns; epoll_wait's ms would send requests late.
    let n = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait2,
            epoll,
            events.as_mut_ptr(),
            events.len() as libc::c_int,
            spec_ptr,
            std::ptr::null::<libc::sigset_t>(),
            0usize,
        )
    };
    if n < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == ErrorKind::Interrupted {
            return 0;
        }
        panic!("epoll_pwait2: {error}");
    }
    n as usize
}

fn main() {
    let args = parse_args();
    let method = if args.get { "GET" } else { "POST" };
    let render = |path: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            args.host
        )
        .into_bytes()
    };
    let requests: Vec<Vec<u8>> = match &args.path {
        Some(path) => vec![render(path)],
        None => (0..args.ads)
            .map(|n| render(&format!("/ads/AD{n}/impression")))
            .collect(),
    };
    // How late the kernel may wake us for the next due request (default 1 µs, not Linux's
    // 50 µs): more slack costs fewer wake-ups, and the lateness counts in the latency.
    let slack_ns = args.slack.as_nanos().max(1) as libc::c_ulong;
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack_ns) };

    let total = (args.rate * args.duration.as_secs_f64()) as usize;
    let ns_per_request = 1e9 / args.rate;
    let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(
        epoll >= 0,
        "epoll_create1: {}",
        std::io::Error::last_os_error()
    );
    let mut lp = Loop {
        epoll,
        host: args.host.clone(),
        conns: (0..args.conns)
            .map(|_| Conn {
                stream: None,
                buf: Vec::with_capacity(4096),
                request: None,
            })
            .collect(),
    };
    for c in 0..args.conns {
        lp.connect(c);
    }
    let mut free: Vec<usize> = (0..args.conns).rev().collect();
    let mut latency_ns = vec![0u64; total];
    let mut failed = vec![false; total];
    let (mut next, mut finished, mut late) = (0usize, 0usize, 0usize);
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; args.conns.max(1)];
    let mut scratch = vec![0u8; 16384];
    let start = Instant::now() + Duration::from_millis(100);
    let due = |i: usize| start + Duration::from_nanos((i as f64 * ns_per_request) as u64);
    let deadline = start + args.duration + Duration::from_secs(30);

    while finished < total {
        let now = Instant::now();
        while next < total && due(next) <= now {
            let Some(c) = free.pop() else { break };
            if now.duration_since(due(next)) > Duration::from_millis(1) {
                late += 1;
            }
            if lp.conns[c].stream.is_none() {
                lp.connect(c);
            }
            if lp.send(c, &requests[next % requests.len()]) {
                lp.conns[c].request = Some(next);
            } else {
                latency_ns[next] = now.duration_since(due(next)).as_nanos() as u64;
                failed[next] = true;
                finished += 1;
                lp.connect(c);
                free.push(c);
            }
            next += 1;
        }
        if finished == total {
            break; // the last requests failed on sending: nothing to wait for
        }
        if now >= deadline {
            for conn in &lp.conns {
                if let Some(i) = conn.request {
                    latency_ns[i] = now.duration_since(due(i)).as_nanos() as u64;
                    failed[i] = true;
                }
            }
            for i in next..total {
                latency_ns[i] = now.saturating_duration_since(due(i)).as_nanos() as u64;
                failed[i] = true;
            }
            break;
        }
        let wake = if next < total && !free.is_empty() {
            due(next).min(deadline)
        } else {
            deadline
        };
        let ready = epoll_wait(
            epoll,
            &mut events,
            Some(wake.saturating_duration_since(now)),
        );
        for event in &events[..ready] {
            let c = event.u64 as usize;
            if let Some(ok) = lp.receive(c, &mut scratch) {
                let i = lp.conns[c].request.take().expect("an answer to a request");
                latency_ns[i] = Instant::now().duration_since(due(i)).as_nanos() as u64;
                failed[i] = !ok;
                finished += 1;
                free.push(c);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let bad = failed.iter().filter(|f| **f).count();
    latency_ns.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let at = |q: f64| ms(latency_ns[(q * (total.max(1) - 1) as f64) as usize]);
    if total == 0 {
        usage("nothing to send: rate x duration < 1");
    }
    println!(
        "{{\"rate\":{},\"sent\":{total},\"ok\":{},\"failed\":{bad},\"p50_ms\":{:.3},\
         \"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},\"achieved_rate\":{:.1},\
         \"sent_late\":{late}}}",
        args.rate,
        total - bad,
        at(0.50),
        at(0.99),
        at(0.999),
        ms(latency_ns[total - 1]),
        total as f64 / elapsed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_length() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(
            parse_response(ok),
            Parsed::Done {
                status: 200,
                closing: false
            }
        );
        assert_eq!(parse_response(&ok[..ok.len() - 1]), Parsed::Incomplete);
        assert_eq!(parse_response(&ok[..20]), Parsed::Incomplete);
        let gone =
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_response(gone),
            Parsed::Done {
                status: 503,
                closing: true
            }
        );
    }

    #[test]
    fn chunked() {
        let body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(body),
            Parsed::Done {
                status: 200,
                closing: false
            }
        );
        assert_eq!(parse_response(&body[..body.len() - 2]), Parsed::Incomplete);
    }

    #[test]
    fn malformed() {
        assert_eq!(parse_response(b"garbage\r\n\r\n"), Parsed::Bad);
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n"), Parsed::Bad);
        let extra = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab";
        assert_eq!(parse_response(extra), Parsed::Bad);
    }
}
