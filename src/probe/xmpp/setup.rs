//! `improbe setup` for XMPP: the group room, persistent and members-only,
//! with the recipient a member and both accounts in, idempotently.

use tokio_xmpp::Stanza;
use tokio_xmpp::jid::{BareJid, Jid};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;

use super::XmppSettings;
use super::connect::Connector;
use super::scram::LoginPassword;
use super::session::Session;

const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
const DATA_FORMS: &str = "jabber:x:data";

fn name(text: &'static str) -> tokio_xmpp::minidom::rxml::NcName {
    tokio_xmpp::minidom::rxml::NcName::try_from(text).expect("a valid XML name")
}

fn field(var: &str, value: &str) -> Element {
    Element::builder("field", DATA_FORMS)
        .attr(name("var"), var)
        .append(Element::builder("value", DATA_FORMS).append(value))
        .build()
}

/// The room configuration improbe wants (XEP-0045 10.1.3).
fn configuration() -> Element {
    let form = Element::builder("x", DATA_FORMS)
        .attr(name("type"), "submit")
        .append(field(
            "FORM_TYPE",
            "http://jabber.org/protocol/muc#roomconfig",
        ))
        .append(field("muc#roomconfig_roomname", "improbe probe room"))
        .append(field("muc#roomconfig_persistentroom", "1"))
        .append(field("muc#roomconfig_membersonly", "1"))
        .append(field("muc#roomconfig_publicroom", "0"))
        .build();
    Element::builder("query", MUC_OWNER).append(form).build()
}

fn membership(member: &BareJid) -> Element {
    let item = Element::builder("item", MUC_ADMIN)
        .attr(name("affiliation"), "member")
        .attr(name("jid"), member.to_string())
        .build();
    Element::builder("query", MUC_ADMIN).append(item).build()
}

fn set(room: &BareJid, id: &str, payload: Element) -> Stanza {
    Iq::Set {
        from: None,
        to: Some(Jid::from(room.clone())),
        id: id.to_owned(),
        payload,
    }
    .into()
}

pub async fn setup(settings: &XmppSettings) -> anyhow::Result<Vec<String>> {
    let room_text = settings.room()?;
    let room = BareJid::new(room_text).map_err(|e| anyhow::anyhow!("group_room: {e}"))?;
    let jid = BareJid::new(&settings.jid).map_err(|e| anyhow::anyhow!("jid: {e}"))?;
    let connector = Connector::new(settings)?;
    let password = LoginPassword::new(settings.password.reveal()?);
    // Joining creates the room, with us as its owner, if it does not exist.
    let owner = Session::open(
        &connector,
        &jid,
        &password,
        "improbe-setup",
        Some(&room),
        None,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{} cannot join {room}: {e}", settings.jid))?;
    owner
        .call(
            set(&room, "improbe-setup-config", configuration()),
            "improbe-setup-config",
        )
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot configure {room} (is {} its owner?): {e}",
                settings.jid
            )
        })?;
    let mut report = vec![format!(
        "room {room}: persistent, members-only, owned by {}",
        settings.jid
    )];
    if let (Some(rx), Some(rx_password)) = (&settings.recipient, &settings.recipient_password) {
        let rx = BareJid::new(rx).map_err(|e| anyhow::anyhow!("recipient: {e}"))?;
        owner
            .call(
                set(&room, "improbe-setup-member", membership(&rx)),
                "improbe-setup-member",
            )
            .await
            .map_err(|e| anyhow::anyhow!("cannot make {rx} a member of {room}: {e}"))?;
        let joined = Session::open(
            &connector,
            &rx,
            &LoginPassword::new(rx_password.reveal()?),
            "improbe-setup-rx",
            Some(&room),
            None,
        )
        .await
        .map_err(|e| anyhow::anyhow!("{rx} cannot join {room}: {e}"))?;
        drop(joined);
        report.push(format!("{rx}: member, joins as the recipient"));
    }
    report.push(format!("group_room = \"{room}\""));
    Ok(report)
}
