//! Sending into a Slack thread: posts, edits and messages with buttons, each retried after
//! a rate limit (HTTP 429) and in order, with user text sent so that Slack links or mentions
//! nothing in it.

use super::*;

/// How long a message Slack keeps answering with HTTP 429 is tried again, each time after the
/// `Retry-After` Slack gave: long enough for a throttled channel (about one post a second) to
/// work through a burst of replies, bounded so that a reply is finally given up and counted.
pub(super) const RATE_LIMIT_BUDGET: Duration = Duration::from_secs(120);

/// Longest `Retry-After` ferry waits for; a longer one is waited this long.
pub(super) const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(30);

/// A Web API call that sends a message (post, edit): each attempt bounded by `limit`, and a
/// rate-limited one (HTTP 429) tried again after its `Retry-After` for up to
/// `RATE_LIMIT_BUDGET`. The caller awaits it, so the next message of the thread waits
/// too and order within a thread is kept.
pub(super) async fn sending<T, F, Fut>(
    what: &'static str,
    limit: Duration,
    call: F,
) -> Result<T, ChatError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ClientResult<T>>,
{
    let mut retried = 0;
    let started = tokio::time::Instant::now();
    loop {
        match tokio::time::timeout(limit, call()).await {
            Err(_) => return Err(ChatError::Timeout { what, limit }),
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(SlackClientError::RateLimitError(e)))
                if started.elapsed() < RATE_LIMIT_BUDGET =>
            {
                let wait = e
                    .retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(LONGEST_RETRY_AFTER);
                retried += 1;
                crate::chat::conversation::count_retry();
                tracing::warn!(call = what, ?wait, retried, "slack: rate limited; retrying");
                tokio::time::sleep(wait).await;
            }
            Ok(Err(e)) => return Err(ChatError::api(e)),
        }
    }
}

/// The thread a reply goes to.
pub(super) struct SlackThread {
    pub(super) client: Arc<SlackHyperClient>,
    pub(super) token: SlackApiToken,
    pub(super) channel: String,
    pub(super) thread_ts: Option<SlackTs>,
    pub(super) timeout: Duration,
}

/// Text is sent with `parse: none` and `link_names: false`: Slack turns nothing in it into a
/// link or mention; only markup ferry wrote itself (escaped user text cannot be) is markup.
pub(super) fn plain(request: SlackApiChatPostMessageRequest) -> SlackApiChatPostMessageRequest {
    request.with_parse("none".into()).with_link_names(false)
}

#[async_trait::async_trait]
impl Thread for SlackThread {
    async fn post(&self, text: &str) -> Result<String, ChatError> {
        let session = self.client.open_session(&self.token);
        let request = plain(
            SlackApiChatPostMessageRequest::new(
                SlackChannelId::new(self.channel.clone()),
                SlackMessageContent::new().with_text(text.to_string()),
            )
            .opt_thread_ts(self.thread_ts.clone()),
        );
        sending("slack chat.postMessage", self.timeout, || {
            session.chat_post_message(&request)
        })
        .await
        .map(|r| r.ts.to_string())
    }

    /// The text as a section (Block Kit limits sections to 3000 characters, so longer text
    /// goes in its own message first) followed by the buttons.
    async fn post_with_buttons(
        &self,
        text: &str,
        buttons: &[crate::command::Button],
    ) -> Result<String, ChatError> {
        let section = if text.len() > 2900 {
            self.post(text).await?;
            "Choose:".to_string()
        } else {
            text.to_string()
        };
        let elements: Vec<serde_json::Value> = buttons
            .iter()
            .enumerate()
            .map(|(i, b)| {
                serde_json::json!({
                    "type": "button",
                    "action_id": format!("ferry-{i}"),
                    "text": { "type": "plain_text", "text": b.label },
                    "value": b.command,
                    "style": if b.primary { "primary" } else { "danger" },
                })
            })
            .collect();
        let blocks: Vec<SlackBlock> = serde_json::from_value(serde_json::json!([
            { "type": "section", "text": { "type": "mrkdwn", "text": section } },
            { "type": "actions", "elements": elements },
        ]))
        .map_err(|e| ChatError::call("cannot build buttons", e))?;
        let session = self.client.open_session(&self.token);
        let request = plain(
            SlackApiChatPostMessageRequest::new(
                SlackChannelId::new(self.channel.clone()),
                SlackMessageContent::new()
                    .with_text(text.to_string())
                    .with_blocks(blocks),
            )
            .opt_thread_ts(self.thread_ts.clone()),
        );
        sending("slack chat.postMessage", self.timeout, || {
            session.chat_post_message(&request)
        })
        .await
        .map(|r| r.ts.to_string())
    }

    async fn edit(&self, id: &str, text: &str) -> Result<(), ChatError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(self.channel.clone()),
            SlackMessageContent::new().with_text(text.to_string()),
            SlackTs::new(id.to_string()),
        )
        .with_parse("none".into())
        .with_link_names(false);
        sending("slack chat.update", self.timeout, || {
            session.chat_update(&request)
        })
        .await
        .map(|_| ())
    }
}
