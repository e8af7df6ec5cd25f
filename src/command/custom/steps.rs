//! Running a user-defined command's steps: built-in commands run one by one as the same user,
//! each with its own checks, stopping at the first that fails or is refused.

use super::Invocation;
use crate::command::error::CommandError;
use crate::command::{Block, Context, Reply};
use crate::domain::{Name, Outcome};

impl Invocation {
    /// Runs each step as its own built-in command with the same user, stopping at the first
    /// that does not end `Ok`. Earlier steps are not undone: the reply says which took effect.
    pub(super) async fn run_steps(&self, steps: &[String], ctx: &Context<'_>) -> Reply {
        let total = steps.len();
        let mut done = Done::default();
        for (i, step) in steps.iter().enumerate() {
            let sub = Context { text: step, ..*ctx };
            let result = match crate::command::parse(step) {
                Err(e) => Err(CommandError::from(e)),
                // Boxed: a step is a built-in command, which may one day route back here.
                Ok(command) => Box::pin(command.execute(&sub)).await,
            };
            let (reply, errored) = match result {
                Ok(reply) => (reply, false),
                Err(e) => {
                    if let CommandError::Store(store) = &e {
                        tracing::error!(error = %store, step = %step, "store failure in a step");
                    }
                    // An interrupted step says itself what took effect: not "nothing changed".
                    let nothing_changed = !matches!(e, CommandError::Interrupted(_));
                    (Reply::from_error(&e), nothing_changed)
                }
            };
            if reply.outcome != Outcome::Ok {
                return self.step_failed(steps, i, reply, errored, done);
            }
            done.lines
                .push(format!("{}. {step}: {}", i + 1, reply.headline));
            done.alert = reply.alert.or(done.alert);
            if i + 1 == total {
                // The last step's detail is the command's (a converge's deploy table).
                done.actions.extend(reply.blocks);
            } else {
                // What an earlier step asks the user to do next (`approve 7`) must not be lost.
                done.actions
                    .extend(reply.blocks.into_iter().filter(is_action));
            }
        }
        let mut reply = Reply::ok(format!(
            "{}: {total} of {total} step{} done",
            self.name,
            plural(total)
        ));
        reply.alert = done.alert;
        for line in done.lines {
            reply = reply.text(line);
        }
        reply.blocks.extend(done.actions);
        reply
    }

    /// The reply for step `index` ending in `failed` (an error's reply when `errored`).
    fn step_failed(
        &self,
        steps: &[String],
        index: usize,
        failed: Reply,
        errored: bool,
        done: Done,
    ) -> Reply {
        let total = steps.len();
        let step = &steps[index];
        // A first step that was refused refused the whole command; once a step has taken
        // effect, a later refusal leaves a half-done command, which is a failure.
        let outcome = if index == 0 {
            failed.outcome
        } else {
            Outcome::Failed
        };
        let mut reply = Reply::failed(format!(
            "{}: step {} of {total} ({step}) failed: {}",
            self.name,
            index + 1,
            failed.headline
        ));
        reply.outcome = outcome;
        // A failed deploy's announcement for the alert channel must not be lost by wrapping.
        reply.alert = failed.alert.or(done.alert);
        for line in done.lines {
            reply = reply.text(line);
        }
        reply.blocks.extend(done.actions);
        let verb = if failed.outcome == Outcome::Refused {
            "refused"
        } else {
            "failed"
        };
        reply = reply.text(format!("{}. {step}: {verb}", index + 1));
        let nothing_changed = Block::Text("Nothing changed.".to_string());
        reply
            .blocks
            .extend(failed.blocks.into_iter().filter(|b| *b != nothing_changed));
        for (j, skipped) in steps.iter().enumerate().skip(index + 1) {
            reply = reply.text(format!("{}. {skipped}: not run", j + 1));
        }
        match index {
            0 if errored => reply.text("Nothing changed."),
            0 => reply,
            1 => reply.text("Step 1 took effect and was not undone."),
            n => reply.text(format!("Steps 1 to {n} took effect and were not undone.")),
        }
    }
}

/// What the steps that succeeded so far contribute to the reply.
#[derive(Default)]
struct Done {
    /// `1. <step>: <its headline>`, one per step.
    lines: Vec<String>,
    /// Blocks carried into the reply: what to do next, and the last step's detail.
    actions: Vec<Block>,
    /// A step's announcement for the environment's alert channel.
    alert: Option<(Name, String)>,
}

/// Whether `block` asks the user to do something (a command to type, buttons to press).
fn is_action(block: &Block) -> bool {
    !matches!(block, Block::Text(_) | Block::Table { .. })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
