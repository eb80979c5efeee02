//! What nodes say to each other on the cluster channel. Carried as JSON in
//! the payload of an authenticated `Message` frame: small, versionable,
//! and readable in a capture by an operator who has the key.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::vrrp::State;

/// One instance as its node reports it in a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceBeat {
    /// Instances are matched across nodes by name.
    pub name: String,
    pub state: State,
    /// Effective priority (base adjusted by tracking).
    pub priority: u8,
    /// The node's VRRP source address for this instance (tie-breaker).
    pub address: Option<IpAddr>,
    /// The highest takeover epoch this node knows for the instance.
    pub epoch: u64,
    /// The node an operator's switchover pinned the instance to, if any.
    pub pinned: Option<String>,
}

/// A heartbeat stamp sent back to the node that stamped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    /// The node whose stamp this is.
    pub node: String,
    pub stamp: u64,
    /// Microseconds between hearing the stamp and sending it back.
    pub held_us: u64,
}

/// A cluster-channel message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Every `heartbeat_interval`: who I am and what each instance is doing
    /// here (method step 1: every node sees every other node).
    Heartbeat {
        node: String,
        instances: Vec<InstanceBeat>,
        /// The sender's clock when it sent this, in microseconds from an
        /// origin of its own: opaque to the receiver, which echoes it.
        /// Absent from older nodes (no round-trip time for them).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stamp: Option<u64>,
        /// Per peer, the last stamp heard from it and how long the sender
        /// held it before this heartbeat: the peer's round-trip time is its
        /// clock now, less the stamp, less the time held.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        echo: Vec<Echo>,
    },
    /// Seed's first config-change message: `node` has become master of
    /// `instance` under `epoch` (raised by every takeover). Receivers record
    /// the new master and stop competing; an old master steps down.
    Takeover {
        instance: String,
        node: String,
        epoch: u64,
        /// The takeover was an operator's choice: it holds against preemption.
        pinned: bool,
        /// The sender's effective priority and VRRP address, to settle two
        /// takeovers announced under the same epoch.
        #[serde(default)]
        priority: u8,
        #[serde(default)]
        address: Option<IpAddr>,
    },
    /// Seed's second config-change message (broadcast by the master): the
    /// operator chose `target` to take `instance`.
    Switchover {
        instance: String,
        target: String,
        epoch: u64,
        id: u64,
    },
    /// Seed's third config-change message (unicast from the master to
    /// `target` only): take `instance`, then tell the others.
    Handoff {
        instance: String,
        target: String,
        epoch: u64,
        id: u64,
        /// An operator's choice (holds against preemption); false when a
        /// stopping master hands over to its successor.
        pin: bool,
    },
    /// An operator's request, sent by the node where `baton switchover` ran
    /// to the current master.
    SwitchoverRequest {
        instance: String,
        target: String,
        unicast: bool,
        id: u64,
        from: String,
    },
    /// The master refused a request (unknown, dead or faulted target...).
    SwitchoverRefused { id: u64, reason: String },
    /// `baton switchover NAME --clear`: the operator's choice no longer
    /// holds; normal preemption resumes.
    ClearPin { instance: String, epoch: u64 },
    /// Data sync (method step 5): `version` of the file `name` follows as
    /// `chunks` Data frames ([`crate::cluster::sync::Chunk`]); `size`
    /// bytes whose SHA-256 is `digest` (hex). Sent by the node that holds
    /// the version: the control node, or a peer asked with `SyncRequest`.
    ///
    /// With `window` set (only to a peer whose `SyncHave` said `acks`),
    /// no chunk follows until the receiver's first `SyncAck`, which names
    /// the chunk to start from (a resumed transfer), and then no more
    /// than a window of unacknowledged chunks is in flight. Absent (false)
    /// from older nodes, which send every chunk at once.
    SyncOffer {
        name: String,
        version: SyncVersion,
        digest: String,
        size: u64,
        chunks: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        window: bool,
    },
    /// Data sync: what the sender holds of `name` (sent to a peer on
    /// connection, to all after every change). The control node counts a
    /// peer's `SyncHave` of its current version as the acknowledgement.
    SyncHave {
        name: String,
        version: Option<SyncVersion>,
        digest: Option<String>,
        /// The highest version the sender knows to be committed.
        committed: Option<SyncVersion>,
        /// The sender has not heard what the receiver holds (its
        /// `SyncHave` on connection was lost): answer with a `SyncHave`.
        /// Absent (false) from older nodes, which ignore it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ask: bool,
        /// The sender acknowledges chunks (`SyncAck`) and resumes
        /// transfers: offer it with `window`. Absent (false) from older
        /// nodes.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        acks: bool,
    },
    /// Data sync: send me `version` of `name` (a new control node catching
    /// up from a peer that holds a newer version than its own).
    SyncRequest { name: String, version: SyncVersion },
    /// Data sync, answering a `window` offer: the receiver holds chunks
    /// `0..next` of `version` (sent at the offer: where to start or
    /// resume; then as each chunk is stored). With `error`, the version
    /// arrived whole but could not be written here (a full disk...): the
    /// sender retries later, with backoff. Older nodes skip this type.
    SyncAck {
        name: String,
        version: SyncVersion,
        next: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// A synced file's version: ordered by epoch (the cluster epoch of the
/// sync instance when the control node produced it), then counter.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SyncVersion {
    pub epoch: u64,
    pub counter: u64,
}

impl std::fmt::Display for SyncVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.epoch, self.counter)
    }
}

/// The largest epoch or version number a peer may send. Honest clusters
/// raise epochs by one per takeover: no real cluster gets near it, and
/// refusing what is beyond keeps every `+ 1` far from wrapping.
pub const MAX_EPOCH: u64 = u64::MAX / 4;

impl Message {
    /// Why a message from `peer` is refused before it is looked at, if it
    /// is: it speaks for another node, or carries an epoch or version
    /// number no honest cluster reaches (counted under the returned name).
    pub fn refusal(&self, peer: &str) -> Option<&'static str> {
        let too_big = |e: u64| e > MAX_EPOCH;
        let version_too_big =
            |v: &Option<SyncVersion>| v.is_some_and(|v| too_big(v.epoch) || too_big(v.counter));
        match self {
            Message::Heartbeat { node, .. } | Message::Takeover { node, .. } if node != peer => {
                Some("not_the_sender")
            }
            Message::SwitchoverRequest { from, .. } if from != peer => Some("not_the_sender"),
            Message::Heartbeat { instances, .. } if instances.iter().any(|b| too_big(b.epoch)) => {
                Some("epoch_out_of_range")
            }
            Message::Takeover { epoch, .. }
            | Message::Switchover { epoch, .. }
            | Message::Handoff { epoch, .. }
            | Message::ClearPin { epoch, .. }
                if too_big(*epoch) =>
            {
                Some("epoch_out_of_range")
            }
            Message::SyncOffer { version, .. }
            | Message::SyncRequest { version, .. }
            | Message::SyncAck { version, .. }
                if version_too_big(&Some(*version)) =>
            {
                Some("version_out_of_range")
            }
            Message::SyncHave {
                version, committed, ..
            } if version_too_big(version) || version_too_big(committed) => {
                Some("version_out_of_range")
            }
            _ => None,
        }
    }

    /// A short name for logs and counters.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Heartbeat { .. } => "heartbeat",
            Message::Takeover { .. } => "takeover",
            Message::Switchover { .. } => "switchover",
            Message::Handoff { .. } => "handoff",
            Message::SwitchoverRequest { .. } => "switchover_request",
            Message::SwitchoverRefused { .. } => "switchover_refused",
            Message::ClearPin { .. } => "clear_pin",
            Message::SyncOffer { .. } => "sync_offer",
            Message::SyncHave { .. } => "sync_have",
            Message::SyncRequest { .. } => "sync_request",
            Message::SyncAck { .. } => "sync_ack",
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Message, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Every message type this version knows.
    pub const KINDS: &'static [&'static str] = &[
        "heartbeat",
        "takeover",
        "switchover",
        "handoff",
        "switchover_request",
        "switchover_refused",
        "clear_pin",
        "sync_offer",
        "sync_have",
        "sync_request",
        "sync_ack",
    ];

    /// For a payload that did not decode: the message type it names, when
    /// that is a type this version does not know (a newer peer's, during a
    /// rolling upgrade: skip it). None for a malformed message.
    pub fn unknown_kind(bytes: &[u8]) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let kind = value.get("type")?.as_str()?;
        (!Self::KINDS.contains(&kind)).then(|| kind.chars().take(64).collect())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn unknown_kinds_are_told_from_malformed_messages() {
        assert_eq!(
            Message::unknown_kind(br#"{"type":"from_the_future","x":1}"#),
            Some("from_the_future".to_string())
        );
        assert_eq!(Message::unknown_kind(br#"{"type":"takeover"}"#), None);
        assert_eq!(Message::unknown_kind(b"not json"), None);
        assert_eq!(Message::unknown_kind(br#"{"no_type":1}"#), None);
        // Every kind a message reports is in the list.
        let beat = Message::Heartbeat {
            stamp: None,
            echo: Vec::new(),
            node: "n1".into(),
            instances: Vec::new(),
        };
        assert!(Message::KINDS.contains(&beat.kind()));
        let json: serde_json::Value = serde_json::from_slice(&beat.to_json()).unwrap();
        assert_eq!(json["type"], "heartbeat");
    }

    #[test]
    fn heartbeats_without_stamps_still_parse_and_stamps_are_optional() {
        // An older node's heartbeat: no stamp, no echo.
        let old = br#"{"type":"heartbeat","node":"n1","instances":[]}"#;
        match Message::from_json(old).unwrap() {
            Message::Heartbeat { stamp, echo, .. } => assert!(stamp.is_none() && echo.is_empty()),
            other => panic!("{other:?}"),
        }
        // A newer one's carries both; an older node ignores unknown fields.
        let beat = Message::Heartbeat {
            node: "n1".into(),
            instances: Vec::new(),
            stamp: Some(7),
            echo: vec![Echo {
                node: "n2".into(),
                stamp: 3,
                held_us: 40,
            }],
        };
        let json = String::from_utf8(beat.to_json()).unwrap();
        assert!(
            json.contains(r#""stamp":7"#) && json.contains(r#""held_us":40"#),
            "{json}"
        );
        assert_eq!(Message::from_json(json.as_bytes()).unwrap(), beat);
    }

    #[test]
    fn messages_that_speak_for_another_node_or_overflow_are_refused() {
        let takeover = |node: &str, epoch: u64| Message::Takeover {
            instance: "VI_1".into(),
            node: node.into(),
            epoch,
            pinned: false,
            priority: 100,
            address: None,
        };
        assert_eq!(takeover("n1", 7).refusal("n1"), None);
        assert_eq!(takeover("n2", 7).refusal("n1"), Some("not_the_sender"));
        assert_eq!(
            takeover("n1", u64::MAX).refusal("n1"),
            Some("epoch_out_of_range")
        );
        assert_eq!(takeover("n1", MAX_EPOCH).refusal("n1"), None);
        let clear = Message::ClearPin {
            instance: "VI_1".into(),
            epoch: MAX_EPOCH + 1,
        };
        assert_eq!(clear.refusal("n1"), Some("epoch_out_of_range"));
        let beat = Message::Heartbeat {
            stamp: None,
            echo: Vec::new(),
            node: "n1".into(),
            instances: vec![InstanceBeat {
                name: "VI_1".into(),
                state: State::Master,
                priority: 100,
                address: None,
                epoch: u64::MAX,
                pinned: None,
            }],
        };
        assert_eq!(beat.refusal("n1"), Some("epoch_out_of_range"));
        assert_eq!(beat.refusal("n2"), Some("not_the_sender"));
        let have = Message::SyncHave {
            name: "cfg".into(),
            version: Some(SyncVersion {
                epoch: 1,
                counter: u64::MAX,
            }),
            digest: None,
            committed: None,
            ask: false,
            acks: false,
        };
        assert_eq!(have.refusal("n1"), Some("version_out_of_range"));
        let request = Message::SwitchoverRequest {
            instance: "VI_1".into(),
            target: "n3".into(),
            unicast: false,
            id: 1,
            from: "n2".into(),
        };
        assert_eq!(request.refusal("n1"), Some("not_the_sender"));
    }

    use super::*;

    #[test]
    fn sync_messages_round_trip_and_versions_order() {
        let v = |epoch, counter| SyncVersion { epoch, counter };
        let m = Message::SyncHave {
            name: "haproxy".into(),
            version: Some(v(2, 7)),
            digest: Some("ab".into()),
            committed: None,
            ask: false,
            acks: false,
        };
        assert_eq!(Message::from_json(&m.to_json()).unwrap(), m);
        // Without `ask` (an older node), and `ask` only when set.
        let old = br#"{"type":"sync_have","name":"haproxy","version":{"epoch":2,"counter":7},"digest":"ab","committed":null}"#;
        assert_eq!(Message::from_json(old).unwrap(), m);
        assert_eq!(m.to_json(), old.to_vec());
        let asking = Message::SyncHave {
            name: "haproxy".into(),
            version: None,
            digest: None,
            committed: None,
            ask: true,
            acks: false,
        };
        assert_eq!(Message::from_json(&asking.to_json()).unwrap(), asking);
        assert!(v(1, 9) < v(2, 1) && v(2, 1) < v(2, 2));
        assert_eq!(v(3, 4).to_string(), "3.4");
    }

    #[test]
    fn round_trip_and_garbage() {
        let m = Message::Takeover {
            instance: "VI_1".into(),
            node: "lb2".into(),
            epoch: 7,
            pinned: true,
            priority: 100,
            address: None,
        };
        assert_eq!(Message::from_json(&m.to_json()).unwrap(), m);
        assert!(Message::from_json(b"{\"type\":\"nope\"}").is_err());
        assert!(Message::from_json(b"\xff\x00").is_err());
    }
}
