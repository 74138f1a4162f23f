//! Zipkin's proto3 `ListOfSpans` (`zipkin.proto3`), as Zipkin reporters send it over
//! Kafka and the OpenTelemetry Collector's Kafka exporter writes it (`zipkin_proto`).
//! Each span becomes the Zipkin v2 JSON form and goes through [`crate::zipkin`], so a
//! span means the same whichever way a Zipkin tracer sent it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::otlp::Decoded;
use crate::zipkin::{from_zipkin, Annotation, Endpoint, ZipkinSpan};

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListOfSpans {
    #[prost(message, repeated, tag = "1")]
    pub spans: Vec<ProtoSpan>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoSpan {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub parent_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub id: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub kind: i32,
    #[prost(string, tag = "5")]
    pub name: String,
    #[prost(fixed64, tag = "6")]
    pub timestamp: u64,
    #[prost(uint64, tag = "7")]
    pub duration: u64,
    #[prost(message, optional, tag = "8")]
    pub local_endpoint: Option<ProtoEndpoint>,
    #[prost(message, optional, tag = "9")]
    pub remote_endpoint: Option<ProtoEndpoint>,
    #[prost(message, repeated, tag = "10")]
    pub annotations: Vec<ProtoAnnotation>,
    #[prost(btree_map = "string, string", tag = "11")]
    pub tags: BTreeMap<String, String>,
    #[prost(bool, tag = "12")]
    pub debug: bool,
    #[prost(bool, tag = "13")]
    pub shared: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoEndpoint {
    #[prost(string, tag = "1")]
    pub service_name: String,
    #[prost(bytes = "vec", tag = "2")]
    pub ipv4: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub ipv6: Vec<u8>,
    #[prost(int32, tag = "4")]
    pub port: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoAnnotation {
    #[prost(fixed64, tag = "1")]
    pub timestamp: u64,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// Decodes a `ListOfSpans`; a span with bad ids or no timestamp is rejected on its own.
pub fn decode(bytes: &[u8]) -> Result<Decoded, String> {
    let list =
        <ListOfSpans as prost::Message>::decode(bytes).map_err(|e| format!("not a Zipkin proto3 ListOfSpans: {e}"))?;
    let mut out = Decoded::default();
    for span in list.spans {
        match from_zipkin(to_v2(span)) {
            Ok(span) => out.spans.push(span),
            Err(reason) => out.rejected.push(reason),
        }
    }
    Ok(out)
}

/// The v2 JSON form of a proto3 span: ids in hex, absent fields as `None`.
pub fn to_v2(span: ProtoSpan) -> ZipkinSpan {
    let kind = match span.kind {
        1 => Some("CLIENT"),
        2 => Some("SERVER"),
        3 => Some("PRODUCER"),
        4 => Some("CONSUMER"),
        _ => None,
    };
    ZipkinSpan {
        trace_id: hex::encode(&span.trace_id),
        id: hex::encode(&span.id),
        parent_id: (!span.parent_id.is_empty()).then(|| hex::encode(&span.parent_id)),
        name: (!span.name.is_empty()).then_some(span.name),
        kind: kind.map(str::to_string),
        timestamp: (span.timestamp != 0).then_some(span.timestamp),
        duration: (span.duration != 0).then_some(span.duration),
        local_endpoint: span.local_endpoint.and_then(endpoint),
        remote_endpoint: span.remote_endpoint.and_then(endpoint),
        annotations: span
            .annotations
            .into_iter()
            .map(|a| Annotation { timestamp: a.timestamp, value: a.value })
            .collect(),
        tags: span.tags,
        debug: span.debug.then_some(true),
        shared: span.shared.then_some(true),
    }
}

fn endpoint(e: ProtoEndpoint) -> Option<Endpoint> {
    let ipv4 = <[u8; 4]>::try_from(e.ipv4.as_slice()).ok().map(|b| Ipv4Addr::from(b).to_string());
    let ipv6 = <[u8; 16]>::try_from(e.ipv6.as_slice()).ok().map(|b| Ipv6Addr::from(b).to_string());
    let endpoint = Endpoint {
        service_name: (!e.service_name.is_empty()).then_some(e.service_name),
        ipv4,
        ipv6,
        port: u16::try_from(e.port).ok().filter(|p| *p != 0),
    };
    (endpoint != Endpoint::default()).then_some(endpoint)
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    #[test]
    fn a_list_of_spans_reads_like_the_same_spans_in_json() {
        let list = ListOfSpans {
            spans: vec![ProtoSpan {
                trace_id: vec![0xab; 16],
                parent_id: vec![0x01; 8],
                id: vec![0x02; 8],
                kind: 2,
                name: "get /cart".into(),
                timestamp: 1_700_000_000_000_001,
                duration: 250,
                local_endpoint: Some(ProtoEndpoint {
                    service_name: "cart".into(),
                    ipv4: vec![10, 0, 0, 7],
                    ipv6: vec![],
                    port: 8080,
                }),
                remote_endpoint: None,
                annotations: vec![ProtoAnnotation { timestamp: 1_700_000_000_000_100, value: "ws".into() }],
                tags: BTreeMap::from([("http.method".to_string(), "GET".to_string())]),
                debug: false,
                shared: true,
            }],
        };
        let json = r#"[{"traceId":"abababababababababababababababab","parentId":"0101010101010101",
            "id":"0202020202020202","kind":"SERVER","name":"get /cart","timestamp":1700000000000001,
            "duration":250,"localEndpoint":{"serviceName":"cart","ipv4":"10.0.0.7","port":8080},
            "annotations":[{"timestamp":1700000000000100,"value":"ws"}],"tags":{"http.method":"GET"},
            "shared":true}]"#;
        let from_proto = decode(&list.encode_to_vec()).unwrap();
        let from_json = crate::zipkin::decode(json.as_bytes()).unwrap();
        assert!(from_proto.rejected.is_empty(), "{:?}", from_proto.rejected);
        assert_eq!(from_proto.spans, from_json.spans);
        assert_eq!(from_proto.spans[0].start_ns, 1_700_000_000_000_001_000);
    }

    #[test]
    fn garbage_is_named() {
        let error = decode(b"\xff\xff\xff").unwrap_err();
        assert!(error.starts_with("not a Zipkin proto3 ListOfSpans"), "{error}");
    }
}

#[cfg(test)]
mod collector_sample {
    /// What the OpenTelemetry Collector's Kafka exporter (contrib v0.165.1) wrote with
    /// `encoding: zipkin_proto` for the Python SDK's root span, whose absent parent it
    /// writes as eight zero bytes.
    const ROOT: &str = "0aad030a10a99f18eccef1e0881c99e99ceb1414f3120800000000000000001a0865651fb707c72faa20022a08636865636b6f757431a5fd89e45e61060038c22142090a0770792d68747470522209d1fd89e45e610600121776616c6964617465647c7b226974656d73223a337d7c305a230a1274656c656d657472792e73646b2e6e616d65120d6f70656e74656c656d657472795a110a047461677312095b2261222c2262225d5a3b0a13736572766963652e696e7374616e63652e6964122435313039626332622d373965612d346165312d623966342d3862666431353831663566335a1e0a166465706c6f796d656e742e656e7669726f6e6d656e741204746573745a200a1674656c656d657472792e73646b2e6c616e67756167651206707974686f6e5a1f0a1574656c656d657472792e73646b2e76657273696f6e1206312e34352e325a170a10687474702e7374617475735f636f646512033230305a0c0a05726174696f1203302e355a240a0f6f74656c2e73636f70652e6e616d65121174726163656b65657065722d74657374735a190a126f74656c2e73636f70652e76657273696f6e1203302e31";

    /// The same for the SDK's client span.
    const SAMPLE: &str = "0aac030a10a99f18eccef1e0881c99e99ceb1414f3120865651fb707c72faa1a08929221e3e570587420012a0663686172676531f1fd89e45e610600381442090a0770792d687474705a1e0a166465706c6f796d656e742e656e7669726f6e6d656e741204746573745a190a126f74656c2e73636f70652e76657273696f6e1203302e315a200a1674656c656d657472792e73646b2e6c616e67756167651206707974686f6e5a230a1274656c656d657472792e73646b2e6e616d65120d6f70656e74656c656d657472795a1f0a1574656c656d657472792e73646b2e76657273696f6e1206312e34352e325a3b0a13736572766963652e696e7374616e63652e6964122435313039626332622d373965612d346165312d623966342d3862666431353831663566335a0d0a056572726f721204747275655a250a106f74656c2e7374617475735f636f646512115354415455535f434f44455f4552524f525a280a176f74656c2e7374617475735f6465736372697074696f6e120d63617264206465636c696e65645a240a0f6f74656c2e73636f70652e6e616d65121174726163656b65657065722d7465737473";

    #[test]
    fn the_collectors_zipkin_proto_decodes() {
        let decoded = super::decode(&hex::decode(SAMPLE).unwrap()).unwrap();
        assert!(decoded.rejected.is_empty(), "{:?}", decoded.rejected);
        assert_eq!(decoded.spans.len(), 1);
        assert_eq!(decoded.spans[0].name, "charge");
        let root = super::decode(&hex::decode(ROOT).unwrap()).unwrap();
        assert!(root.rejected.is_empty(), "{:?}", root.rejected);
        assert_eq!(root.spans[0].name, "checkout");
        assert_eq!(root.spans[0].parent_span_id, None, "zeros are no parent");
    }
}
