//! A minimal Sendmail milter (protocol version 6) that makes Postfix answer `RCPT TO` with an
//! exact reply.
//!
//! Postfix's access tables always prefix their reply text with the address and a class
//! (`550 5.7.68 <ceo@contoso.test>: Sender address rejected: TenantInboundAttribution; ...`),
//! which is not what Microsoft 365 says. A milter's `SMFIR_REPLYCODE` answer is sent to the
//! client as it is, so the Blocked and UnknownRecipient endpoints use this milter to reply
//! word for word like Exchange Online. The decision stays simple and visible in the test: which
//! envelope is rejected with which reply is fixed when the lab starts.
//!
//! Protocol (libmilter's `mfdef.h`): each packet is a 32-bit big-endian length (counting the
//! command byte), a command byte and its data. The MTA opens with `O` (version, actions, protocol
//! flags); we answer `O` asking Postfix to skip every stage but MAIL and RCPT. `D` (macros),
//! `A` (abort) and `K` (quit, a new session follows) get no answer; `Q` ends the connection;
//! `R` gets `y` + the reply (or `c`), every other command `c` (continue).

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The largest packet accepted from Postfix; its packets are far smaller.
const MAX_PACKET: usize = 64 * 1024;

/// How long a connection may stay silent before its thread gives up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Protocol flags asking the MTA not to send a stage: connect, HELO, body, headers, end of
/// headers, unknown commands, DATA.
const SKIP_STAGES: u32 = 0x1 | 0x2 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200;

/// Which envelopes are rejected at `RCPT`, with what reply.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    /// Reject only when the `MAIL FROM` address is in one of these domains (the spoof of the
    /// tenant's own domain); `None`: whatever the sender.
    pub(super) sender_domains: Option<Vec<String>>,
    /// Reject only recipients in these domains.
    pub(super) recipient_domains: Vec<String>,
    /// The reply, e.g. `550 5.7.68 TenantInboundAttribution; ...`.
    pub(super) reply: String,
}

/// A milter serving one [`Rule`] on a Unix socket until dropped.
#[derive(Debug)]
pub(super) struct Milter {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Milter {
    /// Listens on `path` (made writable for Postfix's unprivileged `smtpd`).
    pub(super) fn start(path: &Path, rule: Rule) -> io::Result<Self> {
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        let stop = Arc::new(AtomicBool::new(false));
        let rule = Arc::new(rule);
        let accept = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("lab-milter".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let Ok(conn) = conn else { continue };
                        let rule = Arc::clone(&rule);
                        // Detached: ends when Postfix closes the connection or goes quiet.
                        let _ = thread::Builder::new().name("lab-milter-conn".into()).spawn(
                            move || {
                                let _ = serve(conn, &rule);
                            },
                        );
                    }
                })?
        };
        Ok(Self {
            path: path.to_owned(),
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Milter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag; if the socket is gone, leave the thread
        // blocked rather than hang here (it holds nothing but the listener).
        if UnixStream::connect(&self.path).is_ok()
            && let Some(handle) = self.accept.take()
        {
            let _ = handle.join();
        }
    }
}

/// Serves one Postfix connection (one or more SMTP sessions).
fn serve(mut conn: UnixStream, rule: &Rule) -> io::Result<()> {
    conn.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut sender_matches = false;
    loop {
        let Some((cmd, data)) = read_packet(&mut conn)? else {
            return Ok(());
        };
        match cmd {
            b'O' => {
                let offered = data
                    .get(8..12)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_be_bytes);
                let mut reply = Vec::with_capacity(12);
                reply.extend_from_slice(&6u32.to_be_bytes());
                reply.extend_from_slice(&0u32.to_be_bytes());
                reply.extend_from_slice(&(offered & SKIP_STAGES).to_be_bytes());
                write_packet(&mut conn, b'O', &reply)?;
            }
            b'D' | b'A' | b'K' => {}
            b'Q' => return Ok(()),
            b'M' => {
                sender_matches = match &rule.sender_domains {
                    None => true,
                    Some(domains) => in_domains(first_arg(&data), domains),
                };
                write_packet(&mut conn, b'c', &[])?;
            }
            b'R' => {
                if sender_matches && in_domains(first_arg(&data), &rule.recipient_domains) {
                    let mut reply = rule.reply.clone().into_bytes();
                    reply.push(0);
                    write_packet(&mut conn, b'y', &reply)?;
                } else {
                    write_packet(&mut conn, b'c', &[])?;
                }
            }
            _ => write_packet(&mut conn, b'c', &[])?,
        }
    }
}

/// Reads one packet; `None` at a clean end of the connection.
fn read_packet(conn: &mut UnixStream) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match conn.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_PACKET {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("milter packet of {len} octets"),
        ));
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    let cmd = body[0];
    body.remove(0);
    Ok(Some((cmd, body)))
}

fn write_packet(conn: &mut UnixStream, cmd: u8, data: &[u8]) -> io::Result<()> {
    let len = u32::try_from(data.len() + 1)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet too long"))?;
    let mut packet = Vec::with_capacity(data.len() + 5);
    packet.extend_from_slice(&len.to_be_bytes());
    packet.push(cmd);
    packet.extend_from_slice(data);
    conn.write_all(&packet)
}

/// The first NUL-terminated string of a MAIL or RCPT packet: the address as the client gave
/// it, e.g. `<ceo@contoso.test>`.
fn first_arg(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// Whether the address (`<local@domain>` or bare) is in one of `domains`, case-insensitively.
fn in_domains(address: String, domains: &[String]) -> bool {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    address
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domains.iter().any(|d| d.eq_ignore_ascii_case(domain)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_matched_by_domain() {
        let domains = vec!["contoso.test".to_owned()];
        for (address, want) in [
            ("<ceo@contoso.test>", true),
            ("<CEO@Contoso.TEST>", true),
            ("ceo@contoso.test", true),
            ("<ceo@fabrikam.test>", false),
            ("<ceo@sub.contoso.test>", false),
            ("<>", false),
            ("", false),
        ] {
            assert_eq!(in_domains(address.into(), &domains), want, "{address}");
        }
    }

    #[test]
    fn first_arg_stops_at_nul() {
        assert_eq!(first_arg(b"<a@b>\0SIZE=10\0"), "<a@b>");
        assert_eq!(first_arg(b"<a@b>"), "<a@b>");
        assert_eq!(first_arg(b""), "");
    }

    /// A whole exchange as Postfix runs it, over a socket pair.
    #[test]
    fn rejects_the_spoofed_recipient_with_the_exact_reply() {
        let (mut mta, milter_side) = UnixStream::pair().expect("pair");
        let rule = Rule {
            sender_domains: Some(vec!["contoso.test".into()]),
            recipient_domains: vec!["contoso.test".into()],
            reply: "550 5.7.68 TenantInboundAttribution; Direct Send not allowed".into(),
        };
        let server = thread::spawn(move || serve(milter_side, &rule));
        let mut optneg = Vec::new();
        for v in [6u32, 0x1ff, 0x1f_ffff] {
            optneg.extend_from_slice(&v.to_be_bytes());
        }
        write_packet(&mut mta, b'O', &optneg).expect("write");
        let (cmd, data) = read_packet(&mut mta).expect("read").expect("packet");
        assert_eq!(cmd, b'O');
        assert_eq!(data.get(8..12), Some(&SKIP_STAGES.to_be_bytes()[..]));
        write_packet(&mut mta, b'D', b"Mi\0ABC\0").expect("macros");
        for (cmd, arg, want) in [
            (b'M', &b"<ceo@fabrikam.test>\0"[..], (b'c', &b""[..])),
            (b'R', b"<x@contoso.test>\0", (b'c', b"")),
            (b'A', b"", (0, b"")),
            (b'M', b"<ceo@contoso.test>\0BODY=8BITMIME\0", (b'c', b"")),
            (b'R', b"<x@fabrikam.test>\0", (b'c', b"")),
            (
                b'R',
                b"<x@contoso.test>\0",
                (
                    b'y',
                    b"550 5.7.68 TenantInboundAttribution; Direct Send not allowed\0",
                ),
            ),
        ] {
            write_packet(&mut mta, cmd, arg).expect("write");
            if want.0 != 0 {
                let (got, data) = read_packet(&mut mta).expect("read").expect("packet");
                assert_eq!((got, data.as_slice()), want, "{}", cmd as char);
            }
        }
        write_packet(&mut mta, b'Q', b"").expect("quit");
        server.join().expect("join").expect("served");
    }

    #[test]
    fn oversized_or_truncated_packets_end_the_connection() {
        for bytes in [
            &[0xff, 0xff, 0xff, 0xff, b'O'][..],
            &[0, 0, 0, 0][..],
            &[0, 0, 0, 9, b'M'][..],
        ] {
            let (mut mta, milter_side) = UnixStream::pair().expect("pair");
            mta.write_all(bytes).expect("write");
            drop(mta);
            let rule = Rule {
                sender_domains: None,
                recipient_domains: vec![],
                reply: String::new(),
            };
            assert!(serve(milter_side, &rule).is_err(), "{bytes:?}");
        }
    }
}
