"""Outbox: every mail the back-office queued, its delivery state, and "send now"."""

import pandas as pd
import streamlit as st
from ui import i18n, readers, state, widgets

from backoffice.config import get_settings
from backoffice.domain.errors import DomainError
from backoffice.mail.outbox import STATES, list_mails
from backoffice.mail.sender import deliver_now
from backoffice.services.unit_of_work import UnitOfWork

_ = i18n.gettext
actor = state.actor()
assert actor is not None, "the router shows this page only to a logged-in user"
settings = get_settings()

st.title(_("Outbox"))
widgets.flash()

if not settings.smtp_host:
    st.info(_("No SMTP server is configured (BACKOFFICE_SMTP_HOST): mails stay pending here."))
elif st.button(_("Send now"), type="primary"):
    try:
        report = deliver_now(readers.engine(), actor, settings.smtp_host, settings.smtp_port)
    except DomainError as exc:
        st.error(i18n.error(exc))
    else:
        st.session_state[state.FLASH] = _("{sent} sent, {deferred} to retry, {failed} failed").format(**vars(report))
        st.rerun()

tr = i18n.translator()
chosen = st.selectbox(_("State"), [None, *STATES], format_func=lambda s: tr("All") if s is None else tr(s))
try:
    with UnitOfWork(readers.engine()) as uow:
        mails = list_mails(uow, actor, state=chosen)
except DomainError as exc:
    st.error(i18n.error(exc))
    st.stop()

columns = [
    _("State"),
    _("Kind"),
    _("Recipient"),
    _("Subject"),
    _("Dossier"),
    _("Attempts"),
    _("Last error"),
    _("Queued at"),
    _("Next attempt"),
    _("Sent at"),
]
frame = pd.DataFrame(
    [
        dict(
            zip(
                columns,
                (
                    _(m.state),
                    _(m.kind),
                    m.to_address,
                    m.subject,
                    m.dossier_number or "",
                    m.attempts,
                    m.last_error or "",
                    i18n.moment(m.created_at),
                    i18n.moment(m.next_attempt_at) if m.state == "pending" else "",
                    i18n.moment(m.sent_at),
                ),
                strict=True,
            )
        )
        for m in mails
    ],
    columns=columns,
)
st.dataframe(frame, hide_index=True)
st.caption(_("{count} mails").format(count=i18n.number(len(mails))))
