//! The `patched` file: the functions an update changes, from the
//! per-object reports.

use anyhow::{Context, Result};

/// Parses a `patched` file: `<object> <function>` per line.
pub fn parse_patched(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (obj, func) = l.rsplit_once(' ')?;
            Some((obj.trim().to_string(), func.to_string()))
        })
        .collect()
}

/// The `patched` file of an update from the per-object reports (object
/// path, report JSON): the report's `patched_functions` then its
/// `new_functions`, one `<object> <function>` line each. The out-of-line
/// stubs of `static_cpu_has()` (`.altinstr_aux<from:F#N>`) are left out:
/// they change with the function `F` that uses them, which is listed.
pub fn patched_file(reports: &[(String, String)]) -> Result<String> {
    let mut out = String::new();
    for (object, text) in reports {
        let v = json::parse(text).with_context(|| format!("{object}: bad report"))?;
        for key in ["patched_functions", "new_functions"] {
            let Some(json::Value::Array(list)) = v.get(key) else {
                continue;
            };
            for e in list {
                if let Some(json::Value::String(name)) = e.get("name") {
                    if name.starts_with(".altinstr_aux<") {
                        continue;
                    }
                    let name: String = name
                        .chars()
                        .map(|c| if c.is_whitespace() { '_' } else { c })
                        .collect();
                    out.push_str(&format!("{object} {name}\n"));
                }
            }
        }
    }
    Ok(out)
}

/// Just enough JSON to read the per-object reports.
mod json {
    use anyhow::{Result, bail};

    /// A JSON value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Number(f64),
        String(String),
        Array(Vec<Value>),
        Object(Vec<(String, Value)>),
    }

    impl Value {
        /// The member `key` of an object.
        pub fn get(&self, key: &str) -> Option<&Value> {
            match self {
                Value::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
    }

    /// Parses a whole document.
    pub fn parse(text: &str) -> Result<Value> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            bail!("trailing data at byte {}", p.i);
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }

        fn eat(&mut self, c: u8) -> Result<()> {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                bail!("expected '{}' at byte {}", c as char, self.i)
            }
        }

        fn value(&mut self, depth: usize) -> Result<Value> {
            if depth > 64 {
                bail!("nested too deeply");
            }
            self.ws();
            match self.s.get(self.i) {
                Some(b'{') => {
                    self.i += 1;
                    let mut m = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Object(m));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        m.push((k, self.value(depth + 1)?));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Object(m));
                            }
                            _ => bail!("expected ',' or '}}' at byte {}", self.i),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut a = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Array(a));
                    }
                    loop {
                        a.push(self.value(depth + 1)?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Array(a));
                            }
                            _ => bail!("expected ',' or ']' at byte {}", self.i),
                        }
                    }
                }
                Some(b'"') => Ok(Value::String(self.string()?)),
                Some(b't') if self.s[self.i..].starts_with(b"true") => {
                    self.i += 4;
                    Ok(Value::Bool(true))
                }
                Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                    self.i += 5;
                    Ok(Value::Bool(false))
                }
                Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                    self.i += 4;
                    Ok(Value::Null)
                }
                Some(c) if *c == b'-' || c.is_ascii_digit() => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && matches!(
                            self.s[self.i],
                            b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                        )
                    {
                        self.i += 1;
                    }
                    let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                    match t.parse() {
                        Ok(n) => Ok(Value::Number(n)),
                        Err(_) => bail!("bad number at byte {start}"),
                    }
                }
                _ => bail!("unexpected input at byte {}", self.i),
            }
        }

        fn hex4(&mut self) -> Result<u32> {
            let h = self
                .s
                .get(self.i..self.i + 4)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok());
            match h {
                Some(v) => {
                    self.i += 4;
                    Ok(v)
                }
                None => bail!("bad \\u escape at byte {}", self.i),
            }
        }

        fn string(&mut self) -> Result<String> {
            if self.s.get(self.i) != Some(&b'"') {
                bail!("expected a string at byte {}", self.i);
            }
            self.i += 1;
            let mut out: Vec<u8> = Vec::new();
            loop {
                let Some(&c) = self.s.get(self.i) else {
                    bail!("unterminated string");
                };
                self.i += 1;
                match c {
                    b'"' => break,
                    b'\\' => {
                        let Some(&e) = self.s.get(self.i) else {
                            bail!("unterminated string");
                        };
                        self.i += 1;
                        let ch = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let mut v = self.hex4()?;
                                if (0xd800..0xdc00).contains(&v)
                                    && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                                {
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    v = 0x10000
                                        + ((v - 0xd800) << 10)
                                        + (lo.wrapping_sub(0xdc00) & 0x3ff);
                                }
                                char::from_u32(v).unwrap_or('\u{fffd}')
                            }
                            _ => bail!("bad escape at byte {}", self.i - 1),
                        };
                        let mut b = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                    }
                    c => out.push(c),
                }
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patched_list_from_reports() {
        let r = crate::engine::report::Report {
            object: "kernel/sys.o".into(),
            patched_functions: vec![
                crate::engine::report::Entry {
                    name: ".altinstr_aux<from:do_sys<kernel/sys.o>#0>".into(),
                    section: ".altinstr_aux".into(),
                    reason: Some("differing bytes at offset 0x1".into()),
                    offset: Some(1),
                },
                crate::engine::report::Entry {
                    name: "do_sys \"x\"".into(),
                    section: ".text.do_sys".into(),
                    reason: Some("differing bytes at offset 0x4".into()),
                    offset: Some(4),
                },
            ],
            new_functions: vec![crate::engine::report::Entry {
                name: "helper".into(),
                section: ".text.helper".into(),
                reason: None,
                offset: None,
            }],
            ..Default::default()
        };
        let text = patched_file(&[("kernel/sys.o".to_string(), r.json())]).unwrap();
        assert_eq!(text, "kernel/sys.o do_sys_\"x\"\nkernel/sys.o helper\n");
        assert_eq!(
            parse_patched(&text),
            vec![
                ("kernel/sys.o".to_string(), "do_sys_\"x\"".to_string()),
                ("kernel/sys.o".to_string(), "helper".to_string())
            ]
        );
        assert!(patched_file(&[("x.o".into(), "{\"a\": [".into())]).is_err());
    }

    #[test]
    fn json_subset() {
        let v = json::parse(
            r#"{"a": [1, -2.5e3, true, false, null, "\u00e9\n\ud83d\ude00"], "b": {}}"#,
        )
        .unwrap();
        let Some(json::Value::Array(a)) = v.get("a") else {
            panic!()
        };
        assert_eq!(a[5], json::Value::String("é\n😀".into()));
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"abc", "[1] x", "tru"] {
            assert!(json::parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(1000);
        assert!(json::parse(&deep).is_err());
    }
}
