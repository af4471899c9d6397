//! Paged listings as streams: the user search by email and a learner's xAPI statements.
//!
//! Both follow continuation links, which MindTickle returns on the global host even for
//! tenants of another region, so every link is re-pointed to the tenant's regional host.

use std::collections::VecDeque;

use futures::{Stream, TryStreamExt, stream};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use crate::{
    client::{Client, MAX_BATCH},
    error::Error,
    model::{Statement, User, WireStatement},
};

/// MindTickle's default page of the user search; the maximum is not documented.
const USER_PAGE_SIZE: usize = 50;
/// MindTickle rejects larger statement pages with 400.
const STATEMENT_PAGE_SIZE: usize = 20;
/// Stops a listing whose continuation links never end.
pub(crate) const MAX_PAGES: usize = 1000;

const USER_SEARCH: &str = "user search";
const STATEMENTS: &str = "xAPI statements";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserPage {
    #[serde(default)]
    users: Vec<User>,
    #[serde(default)]
    next_records_url: Option<String>,
}

#[derive(Deserialize)]
struct StatementPage {
    #[serde(default)]
    statements: Vec<WireStatement>,
    #[serde(default)]
    more: Option<String>,
}

/// The request that reads the next page of a listing.
enum Cursor {
    /// The first page, requested by the listing's own first request.
    First,
    /// A continuation link, re-pointed to the regional host.
    Next(String),
    /// The listing cannot continue. The error is returned after the last page's items.
    Failed(Error),
    Done,
}

/// Turns the continuation link of the page just read into the next cursor. `pages` counts
/// the pages read so far, so a listing stops with an error rather than read past
/// [`MAX_PAGES`].
fn continuation(client: &Client, link: Option<String>, pages: usize, what: &'static str) -> Cursor {
    let Some(link) = link.filter(|link| !link.is_empty()) else {
        return Cursor::Done;
    };
    if pages >= MAX_PAGES {
        return Cursor::Failed(Error::TooManyPages { what, pages });
    }
    match client.repoint(&link, client.api_base(), what) {
        Ok(url) => Cursor::Next(url),
        Err(error) => Cursor::Failed(error),
    }
}

/// Progress through the user search. MindTickle takes at most [`MAX_BATCH`] emails per
/// search, so each batch is its own paged listing.
struct UserListing {
    client: Client,
    batches: VecDeque<Vec<String>>,
    cursor: Cursor,
    pages: usize,
}

/// Progress through a learner's statements.
struct StatementListing {
    client: Client,
    /// The xAPI `agent` parameter, which identifies the learner by email.
    agent: String,
    cursor: Cursor,
    pages: usize,
}

impl Client {
    /// Streams the users with the given emails, batch by batch and page by page. Emails
    /// without a user are skipped. Each page is requested only when the stream reaches it.
    ///
    /// After an error the stream ends. A listing that still has more pages after 1000 ends
    /// with [`Error::TooManyPages`] once the items of those pages have been yielded.
    pub fn users_by_email_stream(
        &self,
        emails: &[String],
    ) -> impl Stream<Item = Result<User, Error>> + Send + use<> {
        let batches: VecDeque<Vec<String>> =
            emails.chunks(MAX_BATCH).map(<[String]>::to_vec).collect();
        let cursor = if batches.is_empty() {
            Cursor::Done
        } else {
            Cursor::First
        };
        let listing = UserListing {
            client: self.clone(),
            batches,
            cursor,
            pages: 0,
        };
        let span = tracing::info_span!("users_by_email_stream", ls_url = %self.ls_url());
        stream::try_unfold(listing, move |listing| {
            next_user_page(listing).instrument(span.clone())
        })
        .map_ok(|users| stream::iter(users.into_iter().map(Ok)))
        .try_flatten()
    }

    /// Streams a learner's whole xAPI history, page by page, following `more` links. Ends
    /// after an error, like [`Client::users_by_email_stream`], with the same page limit.
    pub fn statements_stream(
        &self,
        email: &str,
    ) -> impl Stream<Item = Result<Statement, Error>> + Send + use<> {
        let listing = StatementListing {
            client: self.clone(),
            agent: json!({ "mbox": format!("mailto:{email}") }).to_string(),
            cursor: Cursor::First,
            pages: 0,
        };
        let span = tracing::info_span!("statements_stream", ls_url = %self.ls_url());
        stream::try_unfold(listing, move |listing| {
            next_statement_page(listing).instrument(span.clone())
        })
        .map_ok(|statements| stream::iter(statements.into_iter().map(Ok)))
        .try_flatten()
    }
}

async fn next_user_page(
    mut listing: UserListing,
) -> Result<Option<(Vec<User>, UserListing)>, Error> {
    let client = &listing.client;
    let page: UserPage = match std::mem::replace(&mut listing.cursor, Cursor::Done) {
        Cursor::Done => return Ok(None),
        Cursor::Failed(error) => return Err(error),
        Cursor::Next(url) => client.call_json(USER_SEARCH, |http| http.get(&url)).await?,
        Cursor::First => {
            let Some(batch) = listing.batches.pop_front() else {
                return Ok(None);
            };
            listing.pages = 0;
            let body = json!({ "emails": batch });
            let url = client.api_url("/services/data/v4.0/mtobjects/Users");
            let limit = USER_PAGE_SIZE.to_string();
            client
                .call_json(USER_SEARCH, |http| {
                    http.post(&url)
                        .query(&[("limit", limit.as_str())])
                        .json(&body)
                })
                .await?
        }
    };
    listing.pages += 1;
    listing.cursor = match continuation(client, page.next_records_url, listing.pages, USER_SEARCH) {
        Cursor::Done if !listing.batches.is_empty() => Cursor::First,
        cursor => cursor,
    };
    Ok(Some((page.users, listing)))
}

async fn next_statement_page(
    mut listing: StatementListing,
) -> Result<Option<(Vec<Statement>, StatementListing)>, Error> {
    let client = &listing.client;
    let page: StatementPage = match std::mem::replace(&mut listing.cursor, Cursor::Done) {
        Cursor::Done => return Ok(None),
        Cursor::Failed(error) => return Err(error),
        Cursor::Next(url) => client.call_json(STATEMENTS, |http| http.get(&url)).await?,
        Cursor::First => {
            let url = client.api_url("/services/data/v4.0/xapi/statements");
            let limit = STATEMENT_PAGE_SIZE.to_string();
            client
                .call_json(STATEMENTS, |http| {
                    http.get(&url)
                        .query(&[("agent", listing.agent.as_str()), ("limit", limit.as_str())])
                })
                .await?
        }
    };
    listing.pages += 1;
    listing.cursor = continuation(client, page.more, listing.pages, STATEMENTS);
    let statements = page.statements.into_iter().map(Statement::from).collect();
    Ok(Some((statements, listing)))
}
