//! Trace and span identifiers.

use std::fmt;

/// A 16-byte W3C/OTLP trace id. All zeros is invalid on ingest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span id. All zeros is invalid on ingest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SpanId(pub [u8; 8]);

/// Why an identifier could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} must be {expected} bytes, got {got}")]
    WrongLength { what: &'static str, expected: usize, got: usize },
    #[error("{what} is all zeros")]
    AllZero { what: &'static str },
    #[error("{what} is not hex: {text:?}")]
    NotHex { what: &'static str, text: String },
}

impl TraceId {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        let arr: [u8; 16] =
            bytes.try_into().map_err(|_| IdError::WrongLength { what: "trace id", expected: 16, got: bytes.len() })?;
        if arr == [0; 16] {
            return Err(IdError::AllZero { what: "trace id" });
        }
        Ok(Self(arr))
    }

    /// Parses 1 to 32 hex digits, left-padding with zeros as Jaeger and Zipkin do for
    /// 64-bit ids.
    pub fn from_hex(text: &str) -> Result<Self, IdError> {
        let mut out = [0u8; 16];
        parse_hex_padded(text, &mut out, "trace id")?;
        if out == [0; 16] {
            return Err(IdError::AllZero { what: "trace id" });
        }
        Ok(Self(out))
    }

    /// 32 lower-case hex digits: the form OTLP JSON, Tempo and the Kafka key use.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The form Jaeger prints: 16 digits when the high half is zero, else 32.
    pub fn to_jaeger_hex(&self) -> String {
        hex::encode(self.jaeger_bytes())
    }

    /// The bytes Jaeger prints: the low half alone when the high half is zero.
    pub fn jaeger_bytes(&self) -> &[u8] {
        if self.0[..8] == [0; 8] {
            &self.0[8..]
        } else {
            &self.0
        }
    }
}

impl SpanId {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdError> {
        let arr: [u8; 8] =
            bytes.try_into().map_err(|_| IdError::WrongLength { what: "span id", expected: 8, got: bytes.len() })?;
        if arr == [0; 8] {
            return Err(IdError::AllZero { what: "span id" });
        }
        Ok(Self(arr))
    }

    pub fn from_hex(text: &str) -> Result<Self, IdError> {
        let mut out = [0u8; 8];
        parse_hex_padded(text, &mut out, "span id")?;
        if out == [0; 8] {
            return Err(IdError::AllZero { what: "span id" });
        }
        Ok(Self(out))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

fn parse_hex_padded(text: &str, out: &mut [u8], what: &'static str) -> Result<(), IdError> {
    let max = out.len() * 2;
    if text.is_empty() || text.len() > max || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(IdError::NotHex { what, text: text.chars().take(64).collect() });
    }
    let padded = format!("{text:0>max$}");
    hex::decode_to_slice(padded, out).map_err(|_| IdError::NotHex { what, text: text.into() })
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.to_hex())
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({})", self.to_hex())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_hex_is_left_padded() {
        let id = TraceId::from_hex("abc").unwrap();
        assert_eq!(id.to_hex(), "00000000000000000000000000000abc");
        assert_eq!(id.to_jaeger_hex(), "0000000000000abc");
    }

    #[test]
    fn rejects_bad_ids() {
        assert!(matches!(TraceId::from_hex("zz"), Err(IdError::NotHex { .. })));
        assert!(matches!(TraceId::from_hex("0"), Err(IdError::AllZero { .. })));
        assert!(matches!(SpanId::from_bytes(&[1; 7]), Err(IdError::WrongLength { got: 7, .. })));
        assert!(matches!(SpanId::from_hex(&"1".repeat(17)), Err(IdError::NotHex { .. })));
    }
}
