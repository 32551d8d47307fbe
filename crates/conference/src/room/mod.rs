//! One room's state machine: who is in it, who waits in the lobby, and the lifecycle around them
//! (join, resume, disconnect, timeouts, end). Client actions are in `actions.rs`.

mod actions;

use std::collections::VecDeque;

use convene_proto::{
    ChatMessage, ClientMessage, ErrorCode, KnockOutcome, Knocker, LeaveReason, Metadata,
    PROTOCOL_VERSION, ParticipantId, ParticipantInfo, Role, RoomInfo, ServerMessage,
};
use serde::Serialize;

use crate::{Config, Millis, metadata};

/// How the server admits people (`[auth] mode`); decides roles and who may enter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone may enter; the first participant is moderator, and when the last moderator leaves the
    /// longest-present participant takes over.
    Open,
    /// Only holders of a valid token; the token says who is moderator.
    Token,
    /// Token holders, plus guests without a token while a token-holding moderator is present.
    GuestsAfterModerator,
}

/// Who is joining, as established by the server from the token and the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Display name, already chosen by the server (join message, `?name=`, token, default).
    pub name: String,
    pub avatar: Option<String>,
    pub email: Option<String>,
    /// A valid token came with the connection.
    pub authenticated: bool,
    /// The token grants the moderator role.
    pub token_moderator: bool,
    /// The token's `context.features.recording`, when the token lists features (Jitsi: a token with
    /// features and without `recording` may not record). `None`: moderators may record.
    pub may_record: Option<bool>,
}

/// How the server should close a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The participant's session is over (left, kicked, denied, meeting ended).
    Normal,
    /// The connection may not continue (authentication failed, room full).
    Policy,
}

/// Work for the server, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send a message on the connection of `to` (dropped if it has none right now).
    Send {
        to: ParticipantId,
        msg: ServerMessage,
    },
    /// Close the connection of `to`, after the messages before this output.
    Close {
        to: ParticipantId,
        reason: CloseReason,
    },
    /// The connection known as `from` resumed participant `to`: from now on it speaks and listens as `to`
    /// (and any older connection of `to` is closed without further messages).
    Rebind {
        from: ParticipantId,
        to: ParticipantId,
    },
    /// Open a media session for an admitted participant (or reopen one after its transport failed).
    MediaJoin { id: ParticipantId },
    /// Forward an `sdp_offer` / `sdp_answer` / `set_last_n` to the participant's media session.
    MediaSignal {
        id: ParticipantId,
        msg: ClientMessage,
    },
    /// Close the participant's media session.
    MediaLeave { id: ParticipantId },
    /// A moderator asked to start or stop recording. The server tells everyone through the
    /// server-owned `recording` metadata key once the recorder has done it, or sends `by` an error.
    Recording { start: bool, by: ParticipantId },
}

/// A room as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomSnapshot {
    pub room: RoomInfo,
    pub participants: Vec<ParticipantInfo>,
    pub knockers: Vec<Knocker>,
    pub metadata: Metadata,
}

/// An admitted participant and what only the server knows about it.
#[derive(Debug, Clone)]
struct Member {
    info: ParticipantInfo,
    authenticated: bool,
    may_record: Option<bool>,
    resume_token: String,
    /// Its socket is open. A member without one keeps its place until `grace_until`.
    connected: bool,
    grace_until: Option<Millis>,
}

#[derive(Debug, Clone)]
struct Knock {
    knocker: Knocker,
    identity: Identity,
    resume_token: String,
}

/// One room's state. See the crate docs.
#[derive(Debug, Clone)]
pub struct Room {
    config: Config,
    access: Access,
    info: RoomInfo,
    password: Option<String>,
    /// In join order, which is also the order of moderator hand-over.
    members: Vec<Member>,
    knockers: Vec<Knock>,
    metadata: Metadata,
    chat: VecDeque<ChatMessage>,
    next_chat_id: u64,
    /// Since when nobody is in the room or its lobby.
    empty_since: Option<Millis>,
    ended: bool,
}

type Out = Vec<Output>;

impl Room {
    /// A new, empty room. `name` must already be canonical (see [`crate::canonical_room_name`]).
    pub fn new(name: String, config: Config, access: Access, now: Millis) -> Self {
        Self {
            config,
            access,
            info: RoomInfo {
                name,
                locked: false,
                lobby_enabled: false,
                created_at: now,
            },
            password: None,
            members: Vec::new(),
            knockers: Vec::new(),
            metadata: Metadata::new(),
            chat: VecDeque::new(),
            next_chat_id: 1,
            empty_since: Some(now),
            ended: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Admitted participants, including those waiting to resume.
    pub fn participant_count(&self) -> usize {
        self.members.len()
    }

    pub fn knocker_count(&self) -> usize {
        self.knockers.len()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The room has been ended, or empty for the empty-room grace period: the server drops it.
    pub fn is_expired(&self, now: Millis) -> bool {
        self.ended
            || self.empty_since.is_some_and(|since| {
                now.saturating_sub(since) >= self.config.empty_room_grace.as_millis() as u64
            })
    }

    /// The earliest time at which [`Room::tick`] has work (a resume grace ends, or the room expires).
    pub fn next_deadline(&self) -> Option<Millis> {
        let graces = self.members.iter().filter_map(|m| m.grace_until);
        let empty = self
            .empty_since
            .map(|since| since + self.config.empty_room_grace.as_millis() as u64);
        graces.chain(empty).min()
    }

    pub fn snapshot(&self) -> RoomSnapshot {
        RoomSnapshot {
            room: self.info.clone(),
            participants: self.members.iter().map(|m| m.info.clone()).collect(),
            knockers: self.knockers.iter().map(|k| k.knocker.clone()).collect(),
            metadata: self.metadata.clone(),
        }
    }

    /// Participant `id` (a fresh id from the server) asks to enter with `password`, if any.
    pub fn join(
        &mut self,
        now: Millis,
        id: ParticipantId,
        identity: Identity,
        password: Option<String>,
        resume_token: String,
    ) -> Out {
        let mut out = Vec::new();
        let err = |code, text: &str| Output::Send {
            to: id.clone(),
            msg: ServerMessage::error(code, text, Some("join")),
        };
        if self.ended {
            out.push(err(ErrorCode::Unavailable, "the meeting has ended"));
            return out;
        }
        if self.member(&id).is_some() || self.knock_index(&id).is_some() {
            out.push(err(ErrorCode::AlreadyJoined, "already joined"));
            return out;
        }
        if let Err(text) = self.check_name(&identity.name) {
            out.push(err(ErrorCode::InvalidValue, &text));
            return out;
        }
        match self.access {
            Access::Token if !identity.authenticated => {
                out.push(err(
                    ErrorCode::TokenRequired,
                    "this server requires a token",
                ));
                out.push(Output::Close {
                    to: id,
                    reason: CloseReason::Policy,
                });
                return out;
            }
            Access::GuestsAfterModerator if !identity.authenticated && !self.host_present() => {
                out.push(err(
                    ErrorCode::HostRequired,
                    "waiting for a moderator with a token to start the meeting",
                ));
                return out;
            }
            _ => {}
        }
        let moderator = (identity.authenticated && identity.token_moderator)
            || (self.access == Access::Open && self.members.is_empty());
        // Moderators skip the password and the lobby; everyone else meets them in this order.
        if !moderator {
            if let Some(expected) = &self.password {
                match &password {
                    Some(given) if given == expected => {
                        return self.admit(now, id, identity, resume_token, out);
                    }
                    Some(_) => {
                        out.push(err(ErrorCode::WrongPassword, "wrong password"));
                        return out;
                    }
                    None if !self.info.lobby_enabled => {
                        out.push(err(
                            ErrorCode::PasswordRequired,
                            "this room is locked with a password",
                        ));
                        return out;
                    }
                    None => {}
                }
            }
            if self.info.lobby_enabled {
                self.knock(now, id, identity, resume_token, &mut out);
                return out;
            }
        }
        self.admit(now, id, identity, resume_token, out)
    }

    /// Connection `conn` offers `token` to take back a place; on success the place gets `new_token`.
    pub fn resume(
        &mut self,
        now: Millis,
        conn: ParticipantId,
        token: &str,
        new_token: String,
    ) -> Out {
        let _ = now;
        if self.member(&conn).is_some() || self.knock_index(&conn).is_some() {
            // A connection that already has a place must not take over another one and leave its
            // own behind without a connection.
            return vec![Output::Send {
                to: conn,
                msg: ServerMessage::error(
                    ErrorCode::AlreadyJoined,
                    "already joined",
                    Some("resume"),
                ),
            }];
        }
        let Some(member) = self
            .members
            .iter_mut()
            .find(|m| !token.is_empty() && m.resume_token == token)
        else {
            return vec![Output::Send {
                to: conn,
                msg: ServerMessage::error(
                    ErrorCode::ResumeFailed,
                    "unknown or expired resume token; join again",
                    Some("resume"),
                ),
            }];
        };
        member.connected = true;
        member.grace_until = None;
        member.resume_token = new_token;
        let id = member.info.id.clone();
        vec![
            Output::Rebind {
                from: conn,
                to: id.clone(),
            },
            Output::Send {
                msg: self.welcome(&id),
                to: id,
            },
        ]
    }

    /// The connection of `id` closed without `leave`.
    pub fn disconnected(&mut self, now: Millis, id: &str) -> Out {
        let mut out = Vec::new();
        let grace = self.config.reconnect_grace.as_millis() as u64;
        if let Some(member) = self.members.iter_mut().find(|m| m.info.id == id) {
            if member.connected {
                member.connected = false;
                member.grace_until = Some(now + grace);
            }
        } else if let Some(index) = self.knock_index(id) {
            let knock = self.knockers.remove(index);
            self.resolve_knock(&knock.knocker.id, KnockOutcome::Left, None, &mut out);
            self.update_empty(now);
        }
        out
    }

    /// The media transport of `id` failed.
    pub fn media_closed(&mut self, now: Millis, id: &str) -> Out {
        let mut out = Vec::new();
        match self.member(id) {
            Some(m) if m.connected => {
                // The socket still works: let the client negotiate a new transport.
                out.push(Output::Send {
                    to: id.to_owned(),
                    msg: ServerMessage::MediaError {
                        code: "media_closed".into(),
                        message: "the media connection failed; send a new sdp_offer".into(),
                    },
                });
                out.push(Output::MediaJoin { id: id.to_owned() });
            }
            Some(_) => self.remove(now, id, LeaveReason::MediaFailed, &mut out),
            None => {}
        }
        out
    }

    /// Time passed: members whose resume grace ran out are removed.
    pub fn tick(&mut self, now: Millis) -> Out {
        let mut out = Vec::new();
        let expired: Vec<ParticipantId> = self
            .members
            .iter()
            .filter(|m| m.grace_until.is_some_and(|t| t <= now))
            .map(|m| m.info.id.clone())
            .collect();
        for id in expired {
            self.remove(now, &id, LeaveReason::Timeout, &mut out);
        }
        out
    }

    /// End the meeting for everyone (`by` is null when the operator does it).
    pub fn end(&mut self, by: Option<ParticipantId>) -> Out {
        let mut out = Vec::new();
        let msg = ServerMessage::MeetingEnded { by };
        for m in std::mem::take(&mut self.members) {
            if m.connected {
                out.push(Output::Send {
                    to: m.info.id.clone(),
                    msg: msg.clone(),
                });
                out.push(Output::Close {
                    to: m.info.id.clone(),
                    reason: CloseReason::Normal,
                });
            }
            out.push(Output::MediaLeave { id: m.info.id });
        }
        for k in std::mem::take(&mut self.knockers) {
            out.push(Output::Send {
                to: k.knocker.id.clone(),
                msg: msg.clone(),
            });
            out.push(Output::Close {
                to: k.knocker.id,
                reason: CloseReason::Normal,
            });
        }
        self.ended = true;
        out
    }

    /// The operator removes participant `id`. `None` if there is no such participant.
    pub fn admin_kick(&mut self, now: Millis, id: &str) -> Option<Out> {
        self.member(id)?;
        let mut out = Vec::new();
        self.kick(now, None, id, None, &mut out);
        Some(out)
    }

    /// The server (admin API, recorder) writes a metadata key, server-owned keys included.
    pub fn server_set_metadata(
        &mut self,
        key: &str,
        value: serde_json::Value,
    ) -> Result<Out, crate::MetadataError> {
        metadata::check_write(&self.config, &self.metadata, key, &value, true)?;
        let mut out = Vec::new();
        self.write_metadata(key, value, &mut out);
        Ok(out)
    }

    // ----- shared steps -----

    fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.info.id == id)
    }

    fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.info.id == id)
    }

    fn knock_index(&self, id: &str) -> Option<usize> {
        self.knockers.iter().position(|k| k.knocker.id == id)
    }

    fn is_moderator(&self, id: &str) -> bool {
        self.member(id)
            .is_some_and(|m| m.info.role == Role::Moderator)
    }

    /// A moderator who came with a token is in the room (the condition for guests).
    fn host_present(&self) -> bool {
        self.members
            .iter()
            .any(|m| m.authenticated && m.info.role == Role::Moderator)
    }

    fn check_name(&self, name: &str) -> Result<(), String> {
        let max = self.config.max_name_chars;
        let count = name.chars().count();
        if name.trim().is_empty() || count > max || name.chars().any(char::is_control) {
            return Err(format!(
                "display names are 1-{max} characters without control characters"
            ));
        }
        Ok(())
    }

    fn update_empty(&mut self, now: Millis) {
        if self.members.is_empty() && self.knockers.is_empty() {
            self.empty_since.get_or_insert(now);
        } else {
            self.empty_since = None;
        }
    }

    fn role_for(&self, identity: &Identity) -> Role {
        if (identity.authenticated && identity.token_moderator)
            || (self.access == Access::Open && self.members.is_empty())
        {
            Role::Moderator
        } else if identity.authenticated || self.access == Access::Open {
            Role::Participant
        } else {
            Role::Guest
        }
    }

    fn welcome(&self, id: &str) -> ServerMessage {
        let member = self.member(id);
        let resume_token = member.map(|m| m.resume_token.clone()).unwrap_or_default();
        let knockers = if self.is_moderator(id) {
            self.knockers.iter().map(|k| k.knocker.clone()).collect()
        } else {
            Vec::new()
        };
        ServerMessage::Welcome {
            protocol_version: PROTOCOL_VERSION,
            you: id.to_owned(),
            resume_token,
            room: self.info.clone(),
            participants: self.members.iter().map(|m| m.info.clone()).collect(),
            metadata: self.metadata.clone(),
            chat_history: self.chat.iter().cloned().collect(),
            knockers,
            // The server fills these in: it knows the TURN setup and the host the client used.
            ice_servers: Vec::new(),
        }
    }

    fn admit(
        &mut self,
        now: Millis,
        id: ParticipantId,
        identity: Identity,
        resume_token: String,
        mut out: Out,
    ) -> Out {
        if self.members.len() >= self.config.max_participants {
            out.push(Output::Send {
                to: id.clone(),
                msg: ServerMessage::error(ErrorCode::RoomFull, "the room is full", Some("join")),
            });
            out.push(Output::Close {
                to: id,
                reason: CloseReason::Policy,
            });
            return out;
        }
        let role = self.role_for(&identity);
        let info = ParticipantInfo {
            id: id.clone(),
            name: identity.name.trim().to_owned(),
            role,
            audio_muted: false,
            video_muted: false,
            screen_sharing: false,
            hand_raised_at: None,
            joined_at: now,
            avatar: identity.avatar,
            email: identity.email,
        };
        self.broadcast(
            &ServerMessage::ParticipantJoined {
                participant: info.clone(),
            },
            &mut out,
        );
        self.members.push(Member {
            info,
            authenticated: identity.authenticated,
            may_record: identity.may_record,
            resume_token,
            connected: true,
            grace_until: None,
        });
        self.update_empty(now);
        out.push(Output::Send {
            msg: self.welcome(&id),
            to: id.clone(),
        });
        out.push(Output::MediaJoin { id });
        out
    }

    fn knock(
        &mut self,
        now: Millis,
        id: ParticipantId,
        identity: Identity,
        resume_token: String,
        out: &mut Out,
    ) {
        let knocker = Knocker {
            id: id.clone(),
            name: identity.name.trim().to_owned(),
            knocked_at: now,
        };
        self.knockers.push(Knock {
            knocker: knocker.clone(),
            identity,
            resume_token,
        });
        self.update_empty(now);
        out.push(Output::Send {
            to: id,
            msg: ServerMessage::LobbyWaiting,
        });
        self.to_moderators(&ServerMessage::Knock { knocker }, out);
    }

    fn resolve_knock(
        &self,
        id: &str,
        outcome: KnockOutcome,
        by: Option<ParticipantId>,
        out: &mut Out,
    ) {
        self.to_moderators(
            &ServerMessage::KnockResolved {
                participant: id.to_owned(),
                outcome,
                by,
            },
            out,
        );
    }

    /// Removes a member, tells everyone, and hands the moderator role on if needed.
    fn remove(&mut self, now: Millis, id: &str, reason: LeaveReason, out: &mut Out) {
        let Some(index) = self.members.iter().position(|m| m.info.id == id) else {
            return;
        };
        self.members.remove(index);
        out.push(Output::MediaLeave { id: id.to_owned() });
        self.broadcast(
            &ServerMessage::ParticipantLeft {
                participant: id.to_owned(),
                reason,
            },
            out,
        );
        self.hand_over(out);
        self.update_empty(now);
    }

    /// Open rooms always have a moderator while anyone is in them: the longest-present member.
    fn hand_over(&mut self, out: &mut Out) {
        if self.access != Access::Open
            || self.members.iter().any(|m| m.info.role == Role::Moderator)
        {
            return;
        }
        let Some(first) = self.members.first_mut() else {
            return;
        };
        first.info.role = Role::Moderator;
        let id = first.info.id.clone();
        self.announce_update(&id, out);
        self.brief_new_moderator(&id, out);
    }

    /// A new moderator learns who is already knocking.
    fn brief_new_moderator(&self, id: &str, out: &mut Out) {
        for k in &self.knockers {
            out.push(Output::Send {
                to: id.to_owned(),
                msg: ServerMessage::Knock {
                    knocker: k.knocker.clone(),
                },
            });
        }
    }

    fn kick(
        &mut self,
        now: Millis,
        by: Option<ParticipantId>,
        id: &str,
        reason: Option<String>,
        out: &mut Out,
    ) {
        out.push(Output::Send {
            to: id.to_owned(),
            msg: ServerMessage::Kicked { by, reason },
        });
        out.push(Output::Close {
            to: id.to_owned(),
            reason: CloseReason::Normal,
        });
        self.remove(now, id, LeaveReason::Kicked, out);
    }

    fn write_metadata(&mut self, key: &str, value: serde_json::Value, out: &mut Out) {
        let changed = if value.is_null() {
            self.metadata.remove(key).is_some()
        } else {
            self.metadata.insert(key.to_owned(), value.clone()) != Some(value)
        };
        if changed {
            self.broadcast(
                &ServerMessage::Metadata {
                    metadata: self.metadata.clone(),
                },
                out,
            );
        }
    }

    fn announce_update(&self, id: &str, out: &mut Out) {
        if let Some(m) = self.member(id) {
            self.broadcast(
                &ServerMessage::ParticipantUpdated {
                    participant: m.info.clone(),
                },
                out,
            );
        }
    }

    fn announce_room(&self, out: &mut Out) {
        self.broadcast(
            &ServerMessage::RoomUpdated {
                room: self.info.clone(),
            },
            out,
        );
    }

    /// To every member with an open connection.
    fn broadcast(&self, msg: &ServerMessage, out: &mut Out) {
        for m in self.members.iter().filter(|m| m.connected) {
            out.push(Output::Send {
                to: m.info.id.clone(),
                msg: msg.clone(),
            });
        }
    }

    fn to_moderators(&self, msg: &ServerMessage, out: &mut Out) {
        for m in self
            .members
            .iter()
            .filter(|m| m.connected && m.info.role == Role::Moderator)
        {
            out.push(Output::Send {
                to: m.info.id.clone(),
                msg: msg.clone(),
            });
        }
    }
}
