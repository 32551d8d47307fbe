//! The whiteboard's scene as a recording keeps it: Excalidraw elements reconciled the way
//! Excalidraw's collab clients do it, written out as an `.excalidraw` file.
//!
//! Clients send whole or partial element lists (`SCENE_INIT`, `SCENE_UPDATE`); an element replaces
//! the one with its id when its `version` is higher, or equal with a lower `versionNonce` (the
//! clients' tie-break, so every copy settles on the same element). Deleted elements stay in the
//! reconciliation (a late, older copy must not bring them back) but not in the file.

use std::collections::HashMap;

use serde_json::{Value, json};

/// The file name of the final scene inside a recording directory.
pub const SCENE_FILE: &str = "whiteboard.excalidraw";

/// Most elements kept: a scene larger than this is a broken or hostile client, not a drawing.
pub const MAX_ELEMENTS: usize = 100_000;

#[derive(Debug, Default, Clone)]
pub struct Scene {
    elements: Vec<Value>,
    by_id: HashMap<String, usize>,
}

fn version(e: &Value) -> (u64, i64) {
    (
        e["version"].as_u64().unwrap_or(0),
        e["versionNonce"].as_i64().unwrap_or(0),
    )
}

impl Scene {
    /// Applies a list of elements from a scene payload; returns how many changed the scene.
    /// Anything that is not an object with a string `id` is ignored.
    pub fn apply(&mut self, elements: Vec<Value>) -> usize {
        let mut changed = 0;
        for e in elements {
            let Some(id) = e["id"].as_str().map(str::to_owned) else {
                continue;
            };
            match self.by_id.get(&id) {
                Some(&i) => {
                    let (new, old) = (version(&e), version(&self.elements[i]));
                    if new.0 > old.0 || (new.0 == old.0 && new.1 < old.1) {
                        self.elements[i] = e;
                        changed += 1;
                    }
                }
                None if self.elements.len() < MAX_ELEMENTS => {
                    self.by_id.insert(id, self.elements.len());
                    self.elements.push(e);
                    changed += 1;
                }
                None => {}
            }
        }
        changed
    }

    /// Elements that are not deleted, in drawing order (Excalidraw's fractional `index` when the
    /// elements carry one, else the order they were first seen).
    pub fn visible(&self) -> Vec<&Value> {
        let mut out: Vec<&Value> = self
            .elements
            .iter()
            .filter(|e| e["isDeleted"].as_bool() != Some(true))
            .collect();
        // Stable: elements without an index keep their order.
        out.sort_by(|a, b| a["index"].as_str().cmp(&b["index"].as_str()));
        out
    }

    pub fn is_empty(&self) -> bool {
        self.visible().is_empty()
    }

    /// The scene as an `.excalidraw` file (what Excalidraw's "Save to disk" writes), which
    /// excalidraw.com and the desktop app open.
    pub fn to_file(&self) -> String {
        let file = json!({
            "type": "excalidraw",
            "version": 2,
            "source": "convene-recording",
            "elements": self.visible(),
            "appState": {"viewBackgroundColor": "#ffffff", "gridSize": null},
            "files": {},
        });
        serde_json::to_string_pretty(&file).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(id: &str, version: u64, nonce: i64, extra: Value) -> Value {
        let mut e =
            json!({"id": id, "type": "rectangle", "version": version, "versionNonce": nonce});
        if let (Some(e), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            e.extend(x.clone());
        }
        e
    }

    #[test]
    fn newer_versions_win_and_ties_go_to_the_lower_nonce() {
        let mut s = Scene::default();
        assert_eq!(s.apply(vec![el("a", 2, 50, json!({"x": 1}))]), 1);
        // Older: ignored. Same version, higher nonce: ignored. Lower nonce: wins.
        assert_eq!(s.apply(vec![el("a", 1, 0, json!({"x": 2}))]), 0);
        assert_eq!(s.apply(vec![el("a", 2, 60, json!({"x": 3}))]), 0);
        assert_eq!(s.apply(vec![el("a", 2, 10, json!({"x": 4}))]), 1);
        assert_eq!(s.visible()[0]["x"], 4);
        assert_eq!(s.apply(vec![el("a", 3, 99, json!({"x": 5}))]), 1);
        assert_eq!(s.visible()[0]["x"], 5);
    }

    #[test]
    fn deleted_elements_stay_deleted_and_leave_the_file() {
        let mut s = Scene::default();
        s.apply(vec![el("a", 1, 0, json!({})), el("b", 1, 0, json!({}))]);
        s.apply(vec![el("a", 2, 0, json!({"isDeleted": true}))]);
        // A late copy of the old version does not bring it back.
        s.apply(vec![el("a", 1, 0, json!({}))]);
        let ids: Vec<&str> = s
            .visible()
            .iter()
            .filter_map(|e| e["id"].as_str())
            .collect();
        assert_eq!(ids, ["b"]);
        let file: Value = serde_json::from_str(&s.to_file()).unwrap();
        assert_eq!(file["type"], "excalidraw");
        assert_eq!(file["elements"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn order_follows_the_fractional_index_and_junk_is_ignored() {
        let mut s = Scene::default();
        let changed = s.apply(vec![
            el("late", 1, 0, json!({"index": "a2"})),
            json!("not an element"),
            json!({"id": 7}),
            el("early", 1, 0, json!({"index": "a0"})),
        ]);
        assert_eq!(changed, 2);
        let ids: Vec<&str> = s
            .visible()
            .iter()
            .filter_map(|e| e["id"].as_str())
            .collect();
        assert_eq!(ids, ["early", "late"]);
        assert!(Scene::default().is_empty());
    }
}
