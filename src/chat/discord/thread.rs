//! Sending into a Discord conversation: replies to a message, and the responses and
//! follow-ups of a `/ferry` interaction, each retried after a rate limit (HTTP 429) and in
//! order, mentioning nobody.

use super::*;

/// How long a call Discord keeps refusing with 429 Too Many Requests is tried again: long
/// enough for a throttled channel to work through a burst, bounded so that a reply is finally
/// given up and counted.
pub(super) const RATE_LIMIT_BUDGET: Duration = Duration::from_secs(120);

/// The longest wait between two tries.
pub(super) const LONGEST_WAIT: Duration = Duration::from_secs(8);

/// The wait before the first retry of a rate-limited call; it doubles for each further one.
/// serenity 0.12.5 keeps neither Discord's `Retry-After` header nor the body's `retry_after` in
/// its error (the 429 body has no `code`, so serenity does not decode it), so ferry cannot wait
/// exactly as long as asked. With its rate limiter on (production) serenity itself waits out
/// a 429 first; this covers what still comes through, and the proxied client of the tests.
pub(super) const RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// Whether Discord answered 429 Too Many Requests.
pub(super) fn rate_limited(error: &serenity::Error) -> bool {
    matches!(
        error,
        serenity::Error::Http(e) if e.status_code().is_some_and(|s| s.as_u16() == 429)
    )
}

/// `call`, each attempt bounded by `limit`, tried again while Discord answers 429, for up to
/// `RATE_LIMIT_BUDGET`. The caller awaits it, so the next message of the conversation
/// waits until this one is delivered or given up.
pub(super) async fn sending<T, F, Fut>(
    what: &'static str,
    limit: Duration,
    call: F,
) -> Result<T, ChatError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = serenity::Result<T>>,
{
    let mut retried = 0;
    let mut wait = RATE_LIMIT_WAIT;
    let started = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout(limit, call()).await {
            Err(_) => return Err(ChatError::Timeout { what, limit }),
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) if rate_limited(&e) && started.elapsed() < RATE_LIMIT_BUDGET => {
                retried += 1;
                crate::chat::conversation::count_retry();
                tracing::warn!(
                    call = what,
                    ?wait,
                    retried,
                    "discord: rate limited; retrying"
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(LONGEST_WAIT);
            }
            Ok(Err(e)) => return Err(ChatError::api(e)),
        }
    }
}

/// Replies to a message, as Discord replies.
pub(super) struct Replies {
    pub(super) http: Arc<Http>,
    pub(super) channel: ChannelId,
    pub(super) reply_to: MessageId,
    pub(super) timeout: Duration,
}

#[async_trait::async_trait]
impl Thread for Replies {
    async fn post_with_buttons(
        &self,
        text: &str,
        buttons: &[crate::command::Button],
    ) -> Result<String, ChatError> {
        let message = CreateMessage::new()
            .content(text)
            .allowed_mentions(no_mentions())
            .reference_message((self.channel, self.reply_to))
            .components(components(buttons));
        sending("discord send message", self.timeout, || {
            self.channel.send_message(&self.http, message.clone())
        })
        .await
        .map(|m| m.id.get().to_string())
    }

    async fn post(&self, text: &str) -> Result<String, ChatError> {
        let message = CreateMessage::new()
            .content(text)
            .allowed_mentions(no_mentions())
            .reference_message((self.channel, self.reply_to));
        sending("discord send message", self.timeout, || {
            self.channel.send_message(&self.http, message.clone())
        })
        .await
        .map(|m| m.id.get().to_string())
    }

    async fn edit(&self, id: &str, text: &str) -> Result<(), ChatError> {
        let id: u64 = id
            .parse()
            .map_err(|_| ChatError::BadMessageId(id.to_string()))?;
        let edit = EditMessage::new()
            .content(text)
            .allowed_mentions(no_mentions());
        sending("discord edit message", self.timeout, || {
            self.channel
                .edit_message(&self.http, MessageId::new(id), edit.clone())
        })
        .await
        .map(|_| ())
    }
}

/// Replies to a `/ferry` interaction: the deferred original response first, follow-ups after.
pub(super) struct InteractionReplies {
    pub(super) http: Arc<Http>,
    pub(super) command: CommandInteraction,
    pub(super) original_used: AtomicBool,
    pub(super) timeout: Duration,
}

pub(super) const ORIGINAL: &str = "@original";

impl InteractionReplies {
    /// Replaces the deferred original response.
    async fn edit_original(&self, response: EditInteractionResponse) -> Result<(), ChatError> {
        sending("discord edit interaction response", self.timeout, || {
            self.command.edit_response(&self.http, response.clone())
        })
        .await
        .map(|_| ())
    }

    /// A follow-up message; its id.
    async fn followup(
        &self,
        followup: CreateInteractionResponseFollowup,
    ) -> Result<String, ChatError> {
        sending("discord interaction follow-up", self.timeout, || {
            self.command.create_followup(&self.http, followup.clone())
        })
        .await
        .map(|m| m.id.get().to_string())
    }
}

#[async_trait::async_trait]
impl Thread for InteractionReplies {
    async fn post_with_buttons(
        &self,
        text: &str,
        buttons: &[crate::command::Button],
    ) -> Result<String, ChatError> {
        if !self.original_used.swap(true, Ordering::SeqCst) {
            self.edit_original(
                EditInteractionResponse::new()
                    .content(text)
                    .allowed_mentions(no_mentions())
                    .components(components(buttons)),
            )
            .await?;
            return Ok(ORIGINAL.to_string());
        }
        self.followup(
            CreateInteractionResponseFollowup::new()
                .content(text)
                .allowed_mentions(no_mentions())
                .components(components(buttons)),
        )
        .await
    }

    async fn post(&self, text: &str) -> Result<String, ChatError> {
        if !self.original_used.swap(true, Ordering::SeqCst) {
            self.edit_original(
                EditInteractionResponse::new()
                    .content(text)
                    .allowed_mentions(no_mentions()),
            )
            .await?;
            return Ok(ORIGINAL.to_string());
        }
        self.followup(
            CreateInteractionResponseFollowup::new()
                .content(text)
                .allowed_mentions(no_mentions()),
        )
        .await
    }

    async fn edit(&self, id: &str, text: &str) -> Result<(), ChatError> {
        if id == ORIGINAL {
            return self
                .edit_original(
                    EditInteractionResponse::new()
                        .content(text)
                        .allowed_mentions(no_mentions()),
                )
                .await;
        }
        let id: u64 = id
            .parse()
            .map_err(|_| ChatError::BadMessageId(id.to_string()))?;
        let edit = CreateInteractionResponseFollowup::new()
            .content(text)
            .allowed_mentions(no_mentions());
        sending("discord edit interaction follow-up", self.timeout, || {
            self.command
                .edit_followup(&self.http, MessageId::new(id), edit.clone())
        })
        .await
        .map(|_| ())
    }
}
