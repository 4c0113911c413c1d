//! The parser of server responses (RFC 3501 §7, §9), capped and without panics.

use std::fmt;

use super::{
    MAX_DEPTH, MAX_LITERALS, MAX_TOKENS, ProtocolError, RawResponse, literal_announced, malformed,
    printable,
};

/// The condition of a status response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// `OK`.
    Ok,
    /// `NO`: the command failed.
    No,
    /// `BAD`: protocol error.
    Bad,
    /// `PREAUTH` (greeting only).
    Preauth,
    /// `BYE`: the server is closing the connection.
    Bye,
}

impl Status {
    fn parse(word: &[u8]) -> Option<Status> {
        Some(match word.to_ascii_uppercase().as_slice() {
            b"OK" => Status::Ok,
            b"NO" => Status::No,
            b"BAD" => Status::Bad,
            b"PREAUTH" => Status::Preauth,
            b"BYE" => Status::Bye,
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Preauth => "PREAUTH",
            Status::Bye => "BYE",
        })
    }
}

/// A response code (RFC 3501 §7.1), the bracketed part of a status response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    /// `[UIDVALIDITY n]`.
    UidValidity(u32),
    /// `[UIDNEXT n]`.
    UidNext(u32),
    /// `[CAPABILITY ...]`, upper-cased.
    Capability(Vec<String>),
    /// `[READ-ONLY]`.
    ReadOnly,
    /// `[READ-WRITE]`.
    ReadWrite,
    /// Any other code, its text as sent (printable).
    Other(String),
}

/// A status response's condition, code and human-readable text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusText {
    /// The condition.
    pub status: Status,
    /// The response code, if any.
    pub code: Option<Code>,
    /// The text (printable).
    pub text: String,
}

/// The data of one `FETCH` response, the items this client asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fetch {
    /// The message sequence number.
    pub seq: u32,
    /// `UID`.
    pub uid: Option<u32>,
    /// `RFC822.SIZE`.
    pub size: Option<u64>,
    /// `BODY[]` (also as `BODY[]<0>` or `RFC822`): the whole message.
    pub body: Option<Vec<u8>>,
    /// `FLAGS`.
    pub flags: Vec<String>,
}

/// One server response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Response {
    /// `+ text`: the server waits for the rest of the command.
    Continue(String),
    /// `tag OK|NO|BAD text`: a command completed.
    Tagged {
        /// The command's tag.
        tag: String,
        /// Its outcome.
        status: StatusText,
    },
    /// `* OK|NO|BAD|PREAUTH|BYE [code] text`.
    Status(StatusText),
    /// `* CAPABILITY ...`, upper-cased.
    Capability(Vec<String>),
    /// `* SEARCH n n n`.
    Search(Vec<u32>),
    /// `* n EXISTS`.
    Exists(u32),
    /// `* n FETCH (...)`.
    Fetch(Fetch),
    /// Any other untagged response (`FLAGS`, `RECENT`, `EXPUNGE`, `LIST`, ...): its name.
    Other(String),
}

/// A token of the response grammar.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Atom(Vec<u8>),
    Str(Vec<u8>),
}

/// A parsed value: an atom, a string (quoted or literal), or a parenthesised list.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Atom(Vec<u8>),
    Str(Vec<u8>),
    List(Vec<Value>),
}

/// Splits `raw` from byte `start` of its first line into tokens. Literals become strings.
fn tokenize(raw: &RawResponse, start: usize) -> Result<Vec<Token>, ProtocolError> {
    if raw.literals.len() > MAX_LITERALS {
        return Err(ProtocolError::TooLarge(format!(
            "more than {MAX_LITERALS} literals"
        )));
    }
    let mut tokens = Vec::new();
    for (i, line) in raw.lines.iter().enumerate() {
        let mut p = if i == 0 { start.min(line.len()) } else { 0 };
        while p < line.len() {
            if tokens.len() >= MAX_TOKENS {
                return Err(ProtocolError::TooLarge(format!(
                    "more than {MAX_TOKENS} tokens"
                )));
            }
            match line[p] {
                b' ' => p += 1,
                b'(' => {
                    tokens.push(Token::Open);
                    p += 1;
                }
                b')' => {
                    tokens.push(Token::Close);
                    p += 1;
                }
                b'"' => {
                    let mut s = Vec::new();
                    p += 1;
                    loop {
                        match line.get(p) {
                            None => return Err(malformed("unterminated quoted string", line)),
                            Some(b'"') => break,
                            Some(b'\\') => {
                                let c = line
                                    .get(p + 1)
                                    .ok_or_else(|| malformed("backslash at end of line", line))?;
                                s.push(*c);
                                p += 2;
                            }
                            Some(c) => {
                                s.push(*c);
                                p += 1;
                            }
                        }
                    }
                    p += 1;
                    tokens.push(Token::Str(s));
                }
                b'{' => {
                    // Only valid as the announcement at the end of this line.
                    if literal_announced(&line[p..])?.is_none() {
                        return Err(malformed("`{` that is not a literal", line));
                    }
                    let lit = raw
                        .literals
                        .get(i)
                        .ok_or_else(|| malformed("literal announced but missing", line))?;
                    tokens.push(Token::Str(lit.clone()));
                    p = line.len();
                }
                _ => {
                    let begin = p;
                    let mut bracket = 0usize;
                    while p < line.len() {
                        match line[p] {
                            b'[' => bracket += 1,
                            b']' => bracket = bracket.saturating_sub(1),
                            b' ' | b'(' | b')' | b'"' | b'{' if bracket == 0 => break,
                            _ => {}
                        }
                        p += 1;
                    }
                    tokens.push(Token::Atom(line[begin..p].to_vec()));
                }
            }
        }
    }
    Ok(tokens)
}

/// Builds values from tokens, lists nested at most [`MAX_DEPTH`] deep.
fn values(tokens: Vec<Token>, line: &[u8]) -> Result<Vec<Value>, ProtocolError> {
    let mut stack: Vec<Vec<Value>> = vec![Vec::new()];
    for t in tokens {
        match t {
            Token::Open => {
                if stack.len() > MAX_DEPTH {
                    return Err(ProtocolError::TooLarge(format!(
                        "lists nested deeper than {MAX_DEPTH}"
                    )));
                }
                stack.push(Vec::new());
            }
            Token::Close => {
                if stack.len() < 2 {
                    return Err(malformed("unbalanced `)`", line));
                }
                let list = stack.pop().unwrap_or_default();
                if let Some(top) = stack.last_mut() {
                    top.push(Value::List(list));
                }
            }
            Token::Atom(a) => stack
                .last_mut()
                .into_iter()
                .for_each(|t| t.push(Value::Atom(a.clone()))),
            Token::Str(s) => stack
                .last_mut()
                .into_iter()
                .for_each(|t| t.push(Value::Str(s.clone()))),
        }
    }
    if stack.len() != 1 {
        return Err(malformed("unbalanced `(`", line));
    }
    Ok(stack.pop().unwrap_or_default())
}

fn number<T: std::str::FromStr>(b: &[u8]) -> Option<T> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Parses `resp-text = ["[" resp-text-code "]" SP] text` (RFC 3501 §9).
fn status_text(status: Status, rest: &[u8]) -> StatusText {
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    if let Some(inner) = rest.strip_prefix(b"[")
        && let Some(end) = inner.iter().position(|&b| b == b']')
    {
        let code_text = &inner[..end];
        let text = inner[end + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&inner[end + 1..]);
        let mut words = code_text.split(|&b| b == b' ');
        let name = words.next().unwrap_or_default().to_ascii_uppercase();
        let arg = words.next().unwrap_or_default();
        let code = match name.as_slice() {
            b"UIDVALIDITY" => number(arg).map(Code::UidValidity),
            b"UIDNEXT" => number(arg).map(Code::UidNext),
            b"READ-ONLY" => Some(Code::ReadOnly),
            b"READ-WRITE" => Some(Code::ReadWrite),
            b"CAPABILITY" => Some(Code::Capability(capabilities(&code_text[name.len()..]))),
            _ => None,
        }
        .unwrap_or_else(|| Code::Other(printable(code_text)));
        return StatusText {
            status,
            code: Some(code),
            text: printable(text),
        };
    }
    StatusText {
        status,
        code: None,
        text: printable(rest),
    }
}

fn capabilities(text: &[u8]) -> Vec<String> {
    text.split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .take(1000)
        .map(|w| printable(w).to_ascii_uppercase())
        .collect()
}

/// Parses one response.
///
/// RFC 3501 §2.2.2: "The server completion result response indicates the success or failure of
/// the operation. It is tagged with the same tag as the client command which began the
/// operation." §7: "Status responses are OK, NO, BAD, PREAUTH and BYE. [...] Server data [...]
/// are always untagged." §7.5: "The command continuation request response is indicated by a
/// "+" token instead of a tag."
pub fn parse_response(raw: &RawResponse) -> Result<Response, ProtocolError> {
    let first: &[u8] = raw.lines.first().map(Vec::as_slice).unwrap_or_default();
    if raw.lines.len() != raw.literals.len() + 1 {
        return Err(malformed("literals and lines do not match", first));
    }
    if let Some(rest) = first.strip_prefix(b"+") {
        return Ok(Response::Continue(printable(
            rest.strip_prefix(b" ").unwrap_or(rest),
        )));
    }
    let (tag, rest) = match first.iter().position(|&b| b == b' ') {
        Some(i) => (&first[..i], &first[i + 1..]),
        None => return Err(malformed("no space after the tag", first)),
    };
    if tag.is_empty() {
        return Err(malformed("empty tag", first));
    }
    let (word, after) = match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &[][..]),
    };
    if tag != b"*" {
        let status = Status::parse(word)
            .filter(|s| matches!(s, Status::Ok | Status::No | Status::Bad))
            .ok_or_else(|| malformed("tagged response without OK, NO or BAD", first))?;
        return Ok(Response::Tagged {
            tag: printable(tag),
            status: status_text(status, after),
        });
    }
    if let Some(status) = Status::parse(word) {
        return Ok(Response::Status(status_text(status, after)));
    }
    let upper = word.to_ascii_uppercase();
    match upper.as_slice() {
        b"CAPABILITY" => return Ok(Response::Capability(capabilities(after))),
        b"SEARCH" => {
            let mut uids = Vec::new();
            for w in after.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
                // ESEARCH-style modifiers such as "(MODSEQ 5)" are not asked for.
                uids.push(
                    number(w)
                        .ok_or_else(|| malformed("SEARCH result that is not a number", first))?,
                );
                if uids.len() > MAX_TOKENS {
                    return Err(ProtocolError::TooLarge(format!(
                        "more than {MAX_TOKENS} SEARCH results"
                    )));
                }
            }
            return Ok(Response::Search(uids));
        }
        _ => {}
    }
    if let Some(n) = number::<u32>(word) {
        let after = after.strip_prefix(b" ").unwrap_or(after);
        let (kind, data_start) = match after.iter().position(|&b| b == b' ') {
            Some(i) => (after[..i].to_ascii_uppercase(), i + 1),
            None => (after.to_ascii_uppercase(), after.len()),
        };
        return match kind.as_slice() {
            b"EXISTS" => Ok(Response::Exists(n)),
            b"FETCH" => {
                let offset = first.len() - after.len() + data_start;
                fetch(n, raw, offset).map(Response::Fetch)
            }
            _ => Ok(Response::Other(printable(&kind))),
        };
    }
    if upper.is_empty() {
        return Err(malformed("empty untagged response", first));
    }
    Ok(Response::Other(printable(&upper)))
}

/// Parses `msg-att` of `* n FETCH (...)` (RFC 3501 §7.4.2): pairs of item name and value.
fn fetch(seq: u32, raw: &RawResponse, start: usize) -> Result<Fetch, ProtocolError> {
    let first = raw.lines.first().map(Vec::as_slice).unwrap_or_default();
    let tokens = tokenize(raw, start)?;
    let mut vals = values(tokens, first)?;
    let Some(Value::List(items)) = vals.pop().filter(|_| vals.is_empty()) else {
        return Err(malformed("FETCH data is not one parenthesised list", first));
    };
    let mut f = Fetch {
        seq,
        ..Fetch::default()
    };
    let mut it = items.into_iter();
    while let Some(name) = it.next() {
        let Value::Atom(name) = name else {
            return Err(malformed("FETCH item name is not an atom", first));
        };
        let value = it
            .next()
            .ok_or_else(|| malformed("FETCH item without a value", first))?;
        let name = name.to_ascii_uppercase();
        match (name.as_slice(), value) {
            (b"UID", Value::Atom(v)) => {
                f.uid = Some(number(&v).ok_or_else(|| malformed("UID is not a number", first))?);
            }
            (b"RFC822.SIZE", Value::Atom(v)) => {
                f.size = Some(
                    number(&v).ok_or_else(|| malformed("RFC822.SIZE is not a number", first))?,
                );
            }
            (b"BODY[]" | b"BODY[]<0>" | b"RFC822" | b"BINARY[]", Value::Str(s)) => f.body = Some(s),
            (b"BODY[]" | b"BODY[]<0>" | b"RFC822", Value::Atom(a))
                if a.eq_ignore_ascii_case(b"NIL") =>
            {
                f.body = Some(Vec::new());
            }
            (b"FLAGS", Value::List(flags)) => {
                f.flags = flags
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Atom(a) => Some(printable(&a)),
                        _ => None,
                    })
                    .collect();
            }
            (b"UID" | b"RFC822.SIZE" | b"FLAGS", _) => {
                return Err(malformed(
                    format!(
                        "FETCH item {} has a value of the wrong type",
                        printable(&name)
                    ),
                    first,
                ));
            }
            // Other items (INTERNALDATE, MODSEQ, ...) are not needed.
            _ => {}
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::imap::ProtocolError;

    fn raw(lines: &[&[u8]], literals: &[&[u8]]) -> RawResponse {
        RawResponse {
            lines: lines.iter().map(|l| l.to_vec()).collect(),
            literals: literals.iter().map(|l| l.to_vec()).collect(),
        }
    }

    fn one(line: &str) -> Result<Response, ProtocolError> {
        parse_response(&raw(&[line.as_bytes()], &[]))
    }

    #[test]
    fn status_responses_and_codes() {
        assert_eq!(
            one("* OK [UIDVALIDITY 1795880197] UIDs valid").unwrap(),
            Response::Status(StatusText {
                status: Status::Ok,
                code: Some(Code::UidValidity(1_795_880_197)),
                text: "UIDs valid".into()
            })
        );
        assert_eq!(
            one("a1 OK [READ-ONLY] Examine completed").unwrap(),
            Response::Tagged {
                tag: "a1".into(),
                status: StatusText {
                    status: Status::Ok,
                    code: Some(Code::ReadOnly),
                    text: "Examine completed".into()
                }
            }
        );
        let Response::Status(s) =
            one("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            s.code,
            Some(Code::Capability(vec![
                "IMAP4REV1".into(),
                "STARTTLS".into(),
                "AUTH=PLAIN".into()
            ]))
        );
        assert!(matches!(
            one("a2 NO [AUTHENTICATIONFAILED] Authentication failed.").unwrap(),
            Response::Tagged { status: StatusText { status: Status::No, code: Some(Code::Other(c)), .. }, .. } if c == "AUTHENTICATIONFAILED"
        ));
        assert!(matches!(
            one("* BYE Server shutting down.").unwrap(),
            Response::Status(StatusText {
                status: Status::Bye,
                ..
            })
        ));
        assert_eq!(one("+ ").unwrap(), Response::Continue(String::new()));
        assert_eq!(one("+").unwrap(), Response::Continue(String::new()));
    }

    #[test]
    fn untagged_data() {
        assert_eq!(one("* 23 EXISTS").unwrap(), Response::Exists(23));
        assert_eq!(
            one("* SEARCH 2 84 882").unwrap(),
            Response::Search(vec![2, 84, 882])
        );
        assert_eq!(one("* SEARCH").unwrap(), Response::Search(vec![]));
        assert_eq!(one("* 3 RECENT").unwrap(), Response::Other("RECENT".into()));
        assert_eq!(
            one("* FLAGS (\\Answered \\Seen)").unwrap(),
            Response::Other("FLAGS".into())
        );
        assert_eq!(
            one("* CAPABILITY IMAP4rev1 MOVE").unwrap(),
            Response::Capability(vec!["IMAP4REV1".into(), "MOVE".into()])
        );
    }

    #[test]
    fn fetch_with_literal() {
        let body = b"Subject: x\r\n\r\n{5}\r\n) \"quoted\" (";
        let r = parse_response(&raw(
            &[
                b"* 12 FETCH (UID 34 RFC822.SIZE 44 FLAGS (\\Seen) BODY[] {33}",
                b")",
            ],
            &[body],
        ))
        .unwrap();
        assert_eq!(
            r,
            Response::Fetch(Fetch {
                seq: 12,
                uid: Some(34),
                size: Some(44),
                body: Some(body.to_vec()),
                flags: vec!["\\Seen".into()],
            })
        );
        // Items in another order, the body after the literal's closing text.
        let r = parse_response(&raw(&[b"* 1 FETCH (BODY[] {3}", b" UID 7)"], &[b"abc"])).unwrap();
        assert!(
            matches!(r, Response::Fetch(Fetch { uid: Some(7), body: Some(ref b), .. }) if b == b"abc")
        );
        // A quoted body and an unrequested item with brackets and spaces.
        let r =
            one("* 2 FETCH (UID 9 BODY[HEADER.FIELDS (FROM TO)] \"x\" BODY[] \"a\\\"b\")").unwrap();
        assert!(
            matches!(r, Response::Fetch(Fetch { uid: Some(9), body: Some(ref b), .. }) if b == b"a\"b")
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        for bad in [
            "",
            "*",
            "a1 MAYBE done",
            "* 1 FETCH (UID x)",
            "* 1 FETCH (UID 3",
            "* 1 FETCH UID 3)",
            "* 1 FETCH (UID)",
            "* 1 FETCH (UID 1 BODY[] {2}",
            "* SEARCH 1 two",
            "* 1 FETCH (UID \"unterminated)",
        ] {
            assert!(one(bad).is_err(), "{bad:?}");
        }
        let deep = format!("* 1 FETCH {}{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(one(&deep), Err(ProtocolError::TooLarge(_))));
    }

    proptest! {
        #[test]
        fn parser_never_panics(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..4),
            literal in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let n = lines.len() - 1;
            let r = RawResponse { lines, literals: vec![literal; n] };
            let _ = parse_response(&r);
            for l in &r.lines {
                let _ = literal_announced(l);
            }
        }

        #[test]
        fn fetch_grammar_never_panics(s in "\\* [0-9]{1,3} FETCH [()A-Z0-9\\[\\]<>. \"{}\\\\]{0,60}") {
            let _ = one(&s);
        }
    }
}
