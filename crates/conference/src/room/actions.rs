//! What admitted participants (and knockers) may ask for, and the permission checks around it.

use convene_proto::{
    ChatMessage, ClientMessage, ErrorCode, KnockOutcome, LeaveReason, MAX_LAST_N, ParticipantId,
    Role, ServerMessage, TrackKind,
};

use super::{CloseReason, Out, Output, Room};
use crate::{MetadataWriters, Millis, metadata};

/// Longest kick reason, in bytes.
const MAX_REASON_BYTES: usize = 256;
/// Longest room password, in characters.
const MAX_PASSWORD_CHARS: usize = 128;

/// A refused request: error code and human text for the sender.
struct Refusal(ErrorCode, String);

fn refuse<T>(code: ErrorCode, text: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(code, text.into()))
}

impl Room {
    /// A message from the connection of `from`. `join` and `resume` go to [`Room::join`] and
    /// [`Room::resume`] instead; here they mean the connection already joined.
    pub fn client(&mut self, now: Millis, from: &str, msg: ClientMessage) -> Out {
        let mut out = Vec::new();
        let request = msg.type_name();
        if let Err(Refusal(code, text)) = self.dispatch(now, from, msg, &mut out) {
            out.push(Output::Send {
                to: from.to_owned(),
                msg: ServerMessage::error(code, text, Some(request)),
            });
        }
        out
    }

    fn dispatch(
        &mut self,
        now: Millis,
        from: &str,
        msg: ClientMessage,
        out: &mut Out,
    ) -> Result<(), Refusal> {
        if self.member(from).is_none() {
            return self.outsider_message(now, from, msg, out);
        }
        match msg {
            ClientMessage::Join { .. } | ClientMessage::Resume { .. } => {
                refuse(ErrorCode::AlreadyJoined, "already joined")
            }
            ClientMessage::Leave => {
                out.push(Output::Close {
                    to: from.to_owned(),
                    reason: CloseReason::Normal,
                });
                self.remove(now, from, LeaveReason::Left, out);
                Ok(())
            }
            ClientMessage::SetDisplayName { name } => {
                self.check_name(&name)
                    .or_else(|text| refuse(ErrorCode::InvalidValue, text))?;
                self.update_member(from, out, |m| m.info.name = name.trim().to_owned());
                Ok(())
            }
            ClientMessage::SetMediaState {
                audio_muted,
                video_muted,
                screen_sharing,
            } => {
                self.update_member(from, out, |m| {
                    m.info.audio_muted = audio_muted.unwrap_or(m.info.audio_muted);
                    m.info.video_muted = video_muted.unwrap_or(m.info.video_muted);
                    m.info.screen_sharing = screen_sharing.unwrap_or(m.info.screen_sharing);
                });
                Ok(())
            }
            ClientMessage::RaiseHand { raised } => {
                self.update_member(from, out, |m| match (raised, m.info.hand_raised_at) {
                    (true, None) => m.info.hand_raised_at = Some(now),
                    (false, Some(_)) => m.info.hand_raised_at = None,
                    _ => {}
                });
                Ok(())
            }
            ClientMessage::Reaction { reaction } => {
                self.broadcast(
                    &ServerMessage::Reaction {
                        participant: from.to_owned(),
                        reaction,
                    },
                    out,
                );
                Ok(())
            }
            ClientMessage::Chat { text, to } => self.chat(now, from, text, to, out),
            ClientMessage::GrantModerator { participant } => {
                self.require_moderator(from, "grant the moderator role")?;
                self.require_member(&participant)?;
                if !self.is_moderator(&participant) {
                    self.update_member(&participant, out, |m| m.info.role = Role::Moderator);
                    self.brief_new_moderator(&participant, out);
                }
                Ok(())
            }
            ClientMessage::Mute { participant, kind } => {
                self.require_moderator(from, "mute others")?;
                self.require_member(&participant)?;
                self.force_mute(from, &participant, kind, out);
                Ok(())
            }
            ClientMessage::MuteAll { kind } => {
                self.require_moderator(from, "mute everyone")?;
                let others: Vec<ParticipantId> = self
                    .members
                    .iter()
                    .filter(|m| m.info.id != from)
                    .map(|m| m.info.id.clone())
                    .collect();
                for id in others {
                    self.force_mute(from, &id, kind, out);
                }
                Ok(())
            }
            ClientMessage::Kick {
                participant,
                reason,
            } => {
                self.require_moderator(from, "kick")?;
                self.require_member(&participant)?;
                if participant == from {
                    return refuse(ErrorCode::InvalidValue, "use `leave` to leave");
                }
                if reason.as_ref().is_some_and(|r| r.len() > MAX_REASON_BYTES) {
                    return refuse(
                        ErrorCode::TooLarge,
                        format!("a kick reason is at most {MAX_REASON_BYTES} bytes"),
                    );
                }
                self.kick(now, Some(from.to_owned()), &participant, reason, out);
                Ok(())
            }
            ClientMessage::EndMeeting => {
                self.require_moderator(from, "end the meeting")?;
                out.extend(self.end(Some(from.to_owned())));
                Ok(())
            }
            ClientMessage::SetPassword { password } => {
                self.require_moderator(from, "set the room password")?;
                if let Some(p) = &password {
                    let n = p.chars().count();
                    if n == 0 || n > MAX_PASSWORD_CHARS {
                        return refuse(
                            ErrorCode::InvalidValue,
                            format!("passwords are 1-{MAX_PASSWORD_CHARS} characters"),
                        );
                    }
                }
                self.info.locked = password.is_some();
                self.password = password;
                self.announce_room(out);
                Ok(())
            }
            ClientMessage::SetLobby { enabled } => {
                self.require_moderator(from, "turn the lobby on or off")?;
                if self.info.lobby_enabled != enabled {
                    self.info.lobby_enabled = enabled;
                    self.announce_room(out);
                }
                if !enabled {
                    // Nobody would be left to admit them.
                    let waiting: Vec<ParticipantId> =
                        self.knockers.iter().map(|k| k.knocker.id.clone()).collect();
                    for id in waiting {
                        self.admit_knocker(now, from, &id, out)?;
                    }
                }
                Ok(())
            }
            ClientMessage::Admit { participant } => {
                self.require_moderator(from, "admit from the lobby")?;
                self.admit_knocker(now, from, &participant, out)
            }
            ClientMessage::Deny { participant } => {
                self.require_moderator(from, "deny from the lobby")?;
                let Some(index) = self.knock_index(&participant) else {
                    return refuse(ErrorCode::NotFound, "nobody by that id is in the lobby");
                };
                self.knockers.remove(index);
                out.push(Output::Send {
                    to: participant.clone(),
                    msg: ServerMessage::LobbyDenied,
                });
                out.push(Output::Close {
                    to: participant.clone(),
                    reason: CloseReason::Normal,
                });
                self.resolve_knock(
                    &participant,
                    KnockOutcome::Denied,
                    Some(from.to_owned()),
                    out,
                );
                self.update_empty(now);
                Ok(())
            }
            ClientMessage::SetMetadata { key, value } => {
                if self.config.metadata_writers == MetadataWriters::Moderators {
                    self.require_moderator(from, "set room metadata")?;
                }
                metadata::check_write(&self.config, &self.metadata, &key, &value, false)
                    .or_else(|e| refuse(e.code, e.message))?;
                self.write_metadata(&key, value, out);
                Ok(())
            }
            ClientMessage::StartRecording | ClientMessage::StopRecording => {
                let start = matches!(msg, ClientMessage::StartRecording);
                self.require_moderator(from, "start or stop recording")?;
                if self.member(from).and_then(|m| m.may_record) == Some(false) {
                    return refuse(ErrorCode::Forbidden, "your token does not allow recording");
                }
                out.push(Output::Recording {
                    start,
                    by: from.to_owned(),
                });
                Ok(())
            }
            ClientMessage::SetLastN { last_n } if last_n > MAX_LAST_N => refuse(
                ErrorCode::InvalidValue,
                format!(
                    "last_n must be between 0 and {MAX_LAST_N} (0: as many as the server sends)"
                ),
            ),
            msg @ (ClientMessage::SdpOffer { .. }
            | ClientMessage::SdpAnswer { .. }
            | ClientMessage::TileSizes { .. }
            | ClientMessage::SetLastN { .. }) => {
                out.push(Output::MediaSignal {
                    id: from.to_owned(),
                    msg,
                });
                Ok(())
            }
        }
    }

    /// Messages from a connection that is not (yet) a member: a knocker may leave, nothing else.
    fn outsider_message(
        &mut self,
        now: Millis,
        from: &str,
        msg: ClientMessage,
        out: &mut Out,
    ) -> Result<(), Refusal> {
        let knocking = self.knock_index(from);
        match msg {
            ClientMessage::Leave => {
                if let Some(index) = knocking {
                    self.knockers.remove(index);
                    self.resolve_knock(from, KnockOutcome::Left, None, out);
                    self.update_empty(now);
                }
                out.push(Output::Close {
                    to: from.to_owned(),
                    reason: CloseReason::Normal,
                });
                Ok(())
            }
            ClientMessage::Join { .. } | ClientMessage::Resume { .. } if knocking.is_some() => {
                refuse(ErrorCode::AlreadyJoined, "already waiting in the lobby")
            }
            _ if knocking.is_some() => refuse(
                ErrorCode::NotJoined,
                "waiting in the lobby until a moderator admits you",
            ),
            _ => refuse(ErrorCode::NotJoined, "send `join` first"),
        }
    }

    fn chat(
        &mut self,
        now: Millis,
        from: &str,
        text: String,
        to: Option<ParticipantId>,
        out: &mut Out,
    ) -> Result<(), Refusal> {
        if text.trim().is_empty() {
            return refuse(ErrorCode::InvalidValue, "empty chat message");
        }
        if text.len() > self.config.max_chat_bytes {
            return refuse(
                ErrorCode::TooLarge,
                format!(
                    "chat messages are at most {} bytes",
                    self.config.max_chat_bytes
                ),
            );
        }
        if let Some(to) = &to {
            self.require_member(to)?;
        }
        let from_name = self
            .member(from)
            .map(|m| m.info.name.clone())
            .unwrap_or_default();
        let message = ChatMessage {
            id: self.next_chat_id,
            from: from.to_owned(),
            from_name,
            to: to.clone(),
            text,
            sent_at: now,
        };
        self.next_chat_id += 1;
        let msg = ServerMessage::Chat {
            message: message.clone(),
        };
        match to {
            Some(to) => {
                out.push(Output::Send {
                    to: from.to_owned(),
                    msg: msg.clone(),
                });
                if to != from {
                    out.push(Output::Send { to, msg });
                }
            }
            None => {
                self.broadcast(&msg, out);
                if self.config.chat_history > 0 {
                    if self.chat.len() >= self.config.chat_history {
                        self.chat.pop_front();
                    }
                    self.chat.push_back(message);
                }
            }
        }
        Ok(())
    }

    fn admit_knocker(
        &mut self,
        now: Millis,
        by: &str,
        id: &str,
        out: &mut Out,
    ) -> Result<(), Refusal> {
        let Some(index) = self.knock_index(id) else {
            return refuse(ErrorCode::NotFound, "nobody by that id is in the lobby");
        };
        if self.members.len() >= self.config.max_participants {
            return refuse(ErrorCode::RoomFull, "the room is full");
        }
        let knock = self.knockers.remove(index);
        self.resolve_knock(id, KnockOutcome::Admitted, Some(by.to_owned()), out);
        let admitted = self.admit(
            now,
            knock.knocker.id,
            knock.identity,
            knock.resume_token,
            Vec::new(),
        );
        out.extend(admitted);
        Ok(())
    }

    fn force_mute(&mut self, by: &str, id: &str, kind: TrackKind, out: &mut Out) {
        let Some(m) = self.member_mut(id) else {
            return;
        };
        let flag = match kind {
            TrackKind::Audio => &mut m.info.audio_muted,
            TrackKind::Video => &mut m.info.video_muted,
        };
        if *flag {
            return;
        }
        *flag = true;
        out.push(Output::Send {
            to: id.to_owned(),
            msg: ServerMessage::Muted {
                kind,
                by: by.to_owned(),
            },
        });
        self.announce_update(id, out);
    }

    /// Applies `change` to a member and tells everyone if anything visible changed.
    fn update_member(&mut self, id: &str, out: &mut Out, change: impl FnOnce(&mut super::Member)) {
        let Some(m) = self.member_mut(id) else {
            return;
        };
        let before = m.info.clone();
        change(m);
        if m.info != before {
            self.announce_update(id, out);
        }
    }

    fn require_moderator(&self, id: &str, what: &str) -> Result<(), Refusal> {
        if self.is_moderator(id) {
            Ok(())
        } else {
            refuse(ErrorCode::Forbidden, format!("only moderators may {what}"))
        }
    }

    fn require_member(&self, id: &str) -> Result<(), Refusal> {
        if self.member(id).is_some() {
            Ok(())
        } else {
            refuse(
                ErrorCode::NotFound,
                "no participant by that id is in the room",
            )
        }
    }
}
