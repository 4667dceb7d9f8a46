"""A dossier's sale total, as the Devis (marts.dossier_price_lines) counts it, defined once.

The Devis shows the booking lines of the dossier's current platform version and every line
recorded here (modification, regulation, adjustment, cancellation fee); a line counts unless
its service is cancelled, except the fee the cancellation costs. Ingestion and the services
that add lines both store app.dossiers.sale_total through `active_sale_total`, so the stored
total and the Devis never disagree.
"""

from __future__ import annotations


def active_sale_total(dossiers: str, lines: str, cancelled: str) -> str:
    """SQL returning (dossier_number, sale_total) for each row of `dossiers`.

    `lines` holds the Devis' lines (dossier_number, service_id, origin, sale_total) and
    `cancelled` the cancelled services (dossier_number, service_id); each argument is a table
    name or a parenthesised query.
    """
    return f"""
SELECT d.dossier_number,
       coalesce(sum(x.sale_total) FILTER (WHERE c.service_id IS NULL OR x.origin = 'cancellation_fee'), 0)
           ::numeric(14,2) AS sale_total
FROM {dossiers} d
LEFT JOIN {lines} x ON x.dossier_number = d.dossier_number
LEFT JOIN {cancelled} c ON c.dossier_number = x.dossier_number AND c.service_id = x.service_id
GROUP BY d.dossier_number"""


# The stored dossier `:number`, read from app.* (for a service that has just added a line).
FROM_TABLES = active_sale_total(
    "(SELECT dossier_number FROM app.dossiers WHERE dossier_number = :number)",
    """(SELECT l.dossier_number, l.service_id, l.origin, l.sale_total
        FROM app.price_lines l JOIN app.dossiers o ON o.dossier_number = l.dossier_number
        WHERE l.dossier_number = :number AND (l.origin <> 'booking' OR l.booking_version = o.platform_version))""",
    "(SELECT dossier_number, service_id FROM app.services WHERE dossier_number = :number AND status = 'cancelled')",
)
