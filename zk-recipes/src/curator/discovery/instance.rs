//! [`ServiceInstance`] and its JSON: the bytes Curator's `JsonInstanceSerializer`
//! writes and reads (curator-x-discovery 5.x).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use zk_client::{Error, Result};

use crate::curator::local_address;

/// The Java class Jackson names in a JSON object payload (`"@class"`), so that
/// Java's `ServiceInstance<Map>` readers load it. Java fails the *whole* query
/// (every instance of the service) on an `@class` it cannot load, so the only
/// class written here is this one, which every JVM has.
pub const MAP_PAYLOAD_CLASS: &str = "java.util.LinkedHashMap";

/// How an instance's node lives (Curator's `ServiceType`), which decides its
/// create mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceType {
    /// An ephemeral node: gone with the registering session.
    #[default]
    Dynamic,
    /// A persistent node.
    Static,
    /// A persistent node, meant never to be unregistered.
    Permanent,
    /// An ephemeral sequential node: `<base>/<name>/<id><seq>`.
    DynamicSequential,
}

impl ServiceType {
    /// The create mode Curator uses for this type.
    pub fn create_mode(self) -> zk_client::CreateMode {
        use zk_client::CreateMode;
        match self {
            ServiceType::Dynamic => CreateMode::Ephemeral,
            ServiceType::DynamicSequential => CreateMode::EphemeralSequential,
            ServiceType::Static | ServiceType::Permanent => CreateMode::Persistent,
        }
    }

    /// Whether the node goes with the session.
    pub fn is_ephemeral(self) -> bool {
        matches!(self, ServiceType::Dynamic | ServiceType::DynamicSequential)
    }

    /// The name Java prints (`DYNAMIC`...).
    pub fn java_name(self) -> &'static str {
        match self {
            ServiceType::Dynamic => "DYNAMIC",
            ServiceType::Static => "STATIC",
            ServiceType::Permanent => "PERMANENT",
            ServiceType::DynamicSequential => "DYNAMIC_SEQUENTIAL",
        }
    }
}

/// One token of a [`UriSpec`]: literal text, or a `{field}` to replace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UriPart {
    /// The text, or the field's name.
    #[serde(default)]
    pub value: String,
    /// Whether it is a replacement field.
    #[serde(default)]
    pub variable: bool,
}

/// Curator's `UriSpec`: a URI template such as `{scheme}://{address}:{port}/api`,
/// stored as its parts (`{"parts":[{"value":..,"variable":..},..]}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UriSpec {
    /// The tokens in order.
    #[serde(default)]
    pub parts: Vec<UriPart>,
}

impl UriSpec {
    /// Parses a template as Java's `new UriSpec(raw)` does: `{` and `}`
    /// delimit fields (names trimmed); nested or unbalanced braces are an error.
    pub fn parse(raw: &str) -> Result<UriSpec> {
        let bad = |m: &str| Error::InvalidArgument(format!("uri spec {raw:?}: {m}"));
        let mut parts = Vec::new();
        let (mut inside, mut text) = (false, String::new());
        let flush = |text: &mut String, variable: bool, parts: &mut Vec<UriPart>| {
            if !text.is_empty() {
                let value = if variable {
                    text.trim().to_owned()
                } else {
                    text.clone()
                };
                parts.push(UriPart { value, variable });
                text.clear();
            }
        };
        for c in raw.chars() {
            match c {
                '{' if inside => return Err(bad("{ is not allowed inside of a variable")),
                '}' if !inside => return Err(bad("} must be preceded by {")),
                '{' | '}' => {
                    flush(&mut text, inside, &mut parts);
                    inside = c == '{';
                }
                c => text.push(c),
            }
        }
        if inside {
            return Err(bad("final variable not closed"));
        }
        flush(&mut text, false, &mut parts);
        Ok(UriSpec { parts })
    }

    /// The URI for `instance` (Java's `build(instance)`): `scheme` is `https`
    /// when the instance has an SSL port, else `http`; `name`, `id`,
    /// `address`, `port`, `ssl-port`, `registration-time-utc`,
    /// `service-type` (lower case) come from the instance, `[` and `]` are
    /// literal braces; `vars` override them all; an unknown field is left out.
    pub fn build(&self, instance: Option<&ServiceInstance>, vars: &[(&str, &str)]) -> String {
        let field = |name: &str| -> Option<String> {
            if let Some((_, v)) = vars.iter().find(|(k, _)| *k == name) {
                return Some((*v).to_owned());
            }
            let opt = |v: Option<String>| Some(v.unwrap_or_default());
            match (name, instance) {
                ("[", _) => Some("{".into()),
                ("]", _) => Some("}".into()),
                ("scheme", Some(i)) if i.ssl_port.is_some() => Some("https".into()),
                ("scheme", _) => Some("http".into()),
                ("name", Some(i)) => Some(i.name.clone()),
                ("id", Some(i)) => Some(i.id.clone()),
                ("address", Some(i)) => opt(i.address.clone()),
                ("port", Some(i)) => opt(i.port.map(|p| p.to_string())),
                ("ssl-port", Some(i)) => opt(i.ssl_port.map(|p| p.to_string())),
                ("registration-time-utc", Some(i)) => Some(i.registration_time_utc.to_string()),
                ("service-type", Some(i)) => Some(i.service_type.java_name().to_lowercase()),
                _ => None,
            }
        };
        let mut out = String::new();
        for p in &self.parts {
            if p.variable {
                if let Some(v) = field(&p.value) {
                    out.push_str(&v);
                }
            } else {
                out.push_str(&p.value);
            }
        }
        out
    }
}

fn yes() -> bool {
    true
}

/// A registered service instance, field for field Curator's `ServiceInstance`,
/// serialized as Curator's `JsonInstanceSerializer` does.
///
/// # JSON (compact, keys in this order)
///
/// `name`, `id`, `address`, `port`, `sslPort`, `payload`,
/// `registrationTimeUTC`, `serviceType` (`DYNAMIC` | `STATIC` | `PERMANENT` |
/// `DYNAMIC_SEQUENTIAL`), `uriSpec` (`{"parts":[..]}` or `null`); absent
/// values are `null`. `enabled` is read when present but never written: the
/// one-argument `JsonInstanceSerializer` (what Curator users construct)
/// writes Curator 2.x's compatible form without it, and its readers may fail
/// on unknown properties. Unknown properties are ignored when reading.
///
/// The payload is kept as raw JSON text, byte for byte. For Java readers of
/// `ServiceInstance<Map>` an object should carry `"@class":
/// "java.util.LinkedHashMap"` first ([`ServiceInstance::map_payload`] writes
/// it); a string is written plain.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInstance {
    /// The service's name: the node `<base>/<name>`.
    #[serde(default)]
    pub name: String,
    /// The instance's id: the node `<base>/<name>/<id>`.
    #[serde(default)]
    pub id: String,
    /// Host or address clients use.
    pub address: Option<String>,
    /// Plain port.
    pub port: Option<i32>,
    /// TLS port.
    pub ssl_port: Option<i32>,
    /// Application data, raw JSON.
    pub payload: Option<Box<RawValue>>,
    /// When it was registered, ms since the epoch.
    #[serde(rename = "registrationTimeUTC", default)]
    pub registration_time_utc: i64,
    /// Node lifetime.
    #[serde(default)]
    pub service_type: ServiceType,
    /// URI template.
    pub uri_spec: Option<UriSpec>,
    /// Java's `enabled` (true when absent); read, never written.
    #[serde(skip_serializing, default = "yes")]
    pub enabled: bool,
}

impl PartialEq for ServiceInstance {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.id == o.id
            && self.address == o.address
            && self.port == o.port
            && self.ssl_port == o.ssl_port
            && self.payload.as_ref().map(|p| p.get()) == o.payload.as_ref().map(|p| p.get())
            && self.registration_time_utc == o.registration_time_utc
            && self.service_type == o.service_type
            && self.uri_spec == o.uri_spec
            && self.enabled == o.enabled
    }
}

impl Eq for ServiceInstance {}

impl fmt::Debug for ServiceInstance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceInstance")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("address", &self.address)
            .field("port", &self.port)
            .field("ssl_port", &self.ssl_port)
            .field("payload", &self.payload.as_ref().map(|p| p.get()))
            .field("registration_time_utc", &self.registration_time_utc)
            .field("service_type", &self.service_type)
            .field("uri_spec", &self.uri_spec)
            .finish()
    }
}

impl ServiceInstance {
    /// An instance of `name` with Curator's builder defaults: a random id (a
    /// UUID as Java prints it), the local address, the current time, DYNAMIC.
    pub fn new(name: &str) -> ServiceInstance {
        ServiceInstance {
            name: name.to_owned(),
            id: crate::common::java_uuid(),
            address: Some(local_address().to_owned()),
            port: None,
            ssl_port: None,
            payload: None,
            registration_time_utc: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
            service_type: ServiceType::Dynamic,
            uri_spec: None,
            enabled: true,
        }
    }

    /// Sets the id.
    pub fn id(mut self, id: &str) -> Self {
        self.id = id.to_owned();
        self
    }

    /// Sets the address.
    pub fn address(mut self, address: &str) -> Self {
        self.address = Some(address.to_owned());
        self
    }

    /// Sets the port.
    pub fn port(mut self, port: i32) -> Self {
        self.port = Some(port);
        self
    }

    /// Sets the TLS port.
    pub fn ssl_port(mut self, port: i32) -> Self {
        self.ssl_port = Some(port);
        self
    }

    /// Sets the service type.
    pub fn service_type(mut self, t: ServiceType) -> Self {
        self.service_type = t;
        self
    }

    /// Sets the URI template.
    pub fn uri_spec(mut self, spec: UriSpec) -> Self {
        self.uri_spec = Some(spec);
        self
    }

    /// Sets the payload to this JSON text (checked to be JSON, kept as is).
    pub fn payload_json(mut self, json: &str) -> Result<Self> {
        let raw = RawValue::from_string(json.to_owned())
            .map_err(|e| Error::InvalidArgument(format!("payload is not JSON: {e}")))?;
        self.payload = Some(raw);
        Ok(self)
    }

    /// Sets an object payload as Java's `ServiceInstance<Map>` writes it:
    /// `{"@class":"java.util.LinkedHashMap", <entries in order>}`.
    pub fn map_payload<'a>(
        self,
        entries: impl IntoIterator<Item = (&'a str, serde_json::Value)>,
    ) -> Self {
        let mut s = format!("{{\"@class\":\"{MAP_PAYLOAD_CLASS}\"");
        for (k, v) in entries {
            s.push(',');
            s.push_str(&serde_json::Value::String(k.to_owned()).to_string());
            s.push(':');
            s.push_str(&v.to_string());
        }
        s.push('}');
        self.payload_json(&s).expect("made as JSON")
    }

    /// The payload's JSON text, if any.
    pub fn payload_text(&self) -> Option<&str> {
        self.payload.as_ref().map(|p| p.get())
    }

    /// The payload as a JSON object's entries, without Jackson's `@class`.
    pub fn payload_map(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        let mut m: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(self.payload_text()?).ok()?;
        m.remove("@class");
        Some(m)
    }

    /// The bytes Curator's `JsonInstanceSerializer` writes for this instance.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a ServiceInstance always serializes")
    }

    /// Reads an instance as Curator's `JsonInstanceSerializer` does.
    pub fn from_json(bytes: &[u8]) -> Result<ServiceInstance> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidArgument(format!("not a Curator service instance: {e}")))
    }

    /// The URI from the instance's template (`None` without one).
    pub fn build_uri(&self) -> Option<String> {
        Some(self.uri_spec.as_ref()?.build(Some(self), &[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Curator 5.4's `JsonInstanceSerializer` wrote for an instance a
    /// Java `ServiceDiscovery<Map>` registered (printed by
    /// `tests/tests/curator_discovery.rs`, which checks it against a live JVM).
    const JAVA: &str = r#"{"name":"api","id":"java-1","address":"10.9.8.7","port":81,"sslPort":null,"payload":{"@class":"java.util.LinkedHashMap","k":"v"},"registrationTimeUTC":1700000000456,"serviceType":"DYNAMIC","uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},{"value":"address","variable":true},{"value":":","variable":false},{"value":"port","variable":true}]}}"#;

    #[test]
    fn round_trip_is_byte_exact() {
        let i = ServiceInstance::from_json(JAVA.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(i.to_json()).unwrap(), JAVA);
        assert_eq!(i.build_uri().unwrap(), "http://10.9.8.7:81");
        assert_eq!(
            i.payload_map().unwrap().get("k"),
            Some(&serde_json::json!("v"))
        );
    }

    #[test]
    fn uri_spec_parses_like_java() {
        let s = UriSpec::parse("{scheme}://{ address }:{port}/x{[}").unwrap();
        let v: Vec<_> = s
            .parts
            .iter()
            .map(|p| (p.value.as_str(), p.variable))
            .collect();
        assert_eq!(
            v,
            [
                ("scheme", true),
                ("://", false),
                ("address", true),
                (":", false),
                ("port", true),
                ("/x", false),
                ("[", true)
            ]
        );
        assert!(UriSpec::parse("{a{b}}").is_err());
        assert!(UriSpec::parse("a}").is_err());
        assert!(UriSpec::parse("{a").is_err());
    }

    #[test]
    fn unknown_fields_and_enabled_are_read() {
        let i = ServiceInstance::from_json(
            br#"{"name":"s","id":"x","address":null,"port":null,"sslPort":1,"payload":"p","registrationTimeUTC":5,"serviceType":"STATIC","uriSpec":null,"enabled":false,"extra":[1]}"#,
        )
        .unwrap();
        assert!(!i.enabled);
        assert_eq!(i.payload_text(), Some("\"p\""));
        assert_eq!(i.service_type, ServiceType::Static);
        assert!(!String::from_utf8(i.to_json()).unwrap().contains("enabled"));
    }
}
