//! The whiteboard of a recorded room. The web app keeps the collab room's key in the room's
//! `whiteboard` metadata, which the server can read, so the recorder follows the scene: it taps
//! the relay's broadcasts into that collab room, decrypts them (AES-128-GCM, as Excalidraw's
//! clients do) and hands the scene elements to the recording, which reconciles them and writes
//! the final scene next to the media files.

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use base64::Engine as _;
use convene_whiteboard::Broadcast;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Input;

/// The collab room id and its key, from the `whiteboard` metadata value
/// (`{collabDetails: {roomId, roomKey}, collabServerUrl}`); `None` when they are missing or the
/// key is not a 128-bit JWK `k` value.
pub fn collab_details(metadata: &Value) -> Option<(String, LessSafeKey)> {
    let details = metadata.get("collabDetails")?;
    let room = details.get("roomId")?.as_str()?;
    let key = details.get("roomKey")?.as_str()?;
    if room.is_empty() || room.len() > 200 || key.len() > 64 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key)
        .ok()?;
    let key = UnboundKey::new(&AES_128_GCM, &bytes).ok()?;
    Some((room.to_owned(), LessSafeKey::new(key)))
}

/// The elements of a scene payload (`SCENE_INIT`, `SCENE_UPDATE`); `None` for other payloads and
/// for anything that does not decrypt with `key` or is not JSON.
pub fn scene_elements(key: &LessSafeKey, broadcast: &Broadcast) -> Option<Vec<Value>> {
    let nonce = Nonce::try_assume_unique_for_key(&broadcast.iv).ok()?;
    let mut data = broadcast.data.to_vec();
    let plain = key.open_in_place(nonce, Aad::empty(), &mut data).ok()?;
    let mut payload: Value = serde_json::from_slice(plain).ok()?;
    match payload.get("type")?.as_str()? {
        "SCENE_INIT" | "SCENE_UPDATE" => {}
        _ => return None,
    }
    match payload.get_mut("payload")?.get_mut("elements")?.take() {
        Value::Array(elements) => Some(elements),
        _ => None,
    }
}

/// Follows one collab room until the tap or the recording ends.
pub async fn follow(
    mut broadcasts: mpsc::Receiver<Broadcast>,
    key: LessSafeKey,
    recording: mpsc::Sender<Input>,
) {
    loop {
        tokio::select! {
            b = broadcasts.recv() => {
                let Some(b) = b else { return };
                if let Some(elements) = scene_elements(&key, &b)
                    && recording.send(Input::WhiteboardElements(elements)).await.is_err()
                {
                    return;
                }
            }
            () = recording.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use serde_json::json;

    fn encrypt(key_bytes: &[u8; 16], iv: [u8; 12], payload: &Value) -> Broadcast {
        let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, key_bytes).unwrap());
        let mut data = serde_json::to_vec(payload).unwrap();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut data)
            .unwrap();
        Broadcast {
            data: Bytes::from(data),
            iv: Bytes::copy_from_slice(&iv),
        }
    }

    #[test]
    fn decrypts_scene_payloads_with_the_metadata_key() {
        let raw = [7u8; 16];
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let metadata =
            json!({"collabDetails": {"roomId": "abc", "roomKey": k}, "collabServerUrl": "x"});
        let (room, key) = collab_details(&metadata).expect("details");
        assert_eq!(room, "abc");
        let scene =
            json!({"type": "SCENE_UPDATE", "payload": {"elements": [{"id": "r", "version": 1}]}});
        let elements = scene_elements(&key, &encrypt(&raw, [1; 12], &scene)).expect("elements");
        assert_eq!(elements, vec![json!({"id": "r", "version": 1})]);
        // Pointer moves are not scenes; another key's payload does not open.
        let mouse = json!({"type": "MOUSE_LOCATION", "payload": {"socketId": "s"}});
        assert!(scene_elements(&key, &encrypt(&raw, [2; 12], &mouse)).is_none());
        assert!(scene_elements(&key, &encrypt(&[8; 16], [3; 12], &scene)).is_none());
        let short_iv = Broadcast {
            iv: Bytes::from_static(&[1; 4]),
            ..encrypt(&raw, [1; 12], &scene)
        };
        assert!(scene_elements(&key, &short_iv).is_none());
    }

    #[test]
    fn metadata_without_a_usable_key_is_refused() {
        assert!(collab_details(&json!({})).is_none());
        assert!(
            collab_details(&json!({"collabDetails": {"roomId": "a", "roomKey": "short"}}))
                .is_none()
        );
        assert!(
            collab_details(
                &json!({"collabDetails": {"roomId": "", "roomKey": "AAAAAAAAAAAAAAAAAAAAAA"}})
            )
            .is_none()
        );
        assert!(
            collab_details(
                &json!({"collabDetails": {"roomId": "a", "roomKey": "AAAAAAAAAAAAAAAAAAAAAA"}})
            )
            .is_some()
        );
    }
}
