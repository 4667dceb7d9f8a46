{#- The AC journal lines of int_entries__supplier_invoices (see the view), of every supplier invoice
    or, with `invoices` (a query of (supplier_code, invoice_number)), of those only: the incremental
    run of accounting_entries reads the invoices it has still to post (docs/dbt.md, "Accounting
    entries: the new records only"). -#}
{% macro entries_supplier_invoices(invoices=none) %}
with invoices as (
    select * from {{ ref('stg_app__supplier_invoices') }}
    {% if invoices is not none %}where (supplier_code, invoice_number) in ({{ invoices }}){% endif %}
),

lines as (
    select * from {{ ref('stg_app__supplier_invoice_lines') }}
    {% if invoices is not none %}where (supplier_code, invoice_number) in ({{ invoices }}){% endif %}
),

suppliers as (
    select * from {{ ref('stg_app__suppliers') }}
),

-- The line's dossier as matching counts it; a line split over several dossiers names none.
attributed as (
    select supplier_code, invoice_number, line_number, min(dossier_number) as dossier_number
    from {{ ref('int_margin__actual_costs') }}
    {% if invoices is not none %}where (supplier_code, invoice_number) in ({{ invoices }}){% endif %}
    group by supplier_code, invoice_number, line_number
    having count(*) = 1
),

rates as (
    select * from {{ ref('int_margin__exchange_rates') }}
),

converted as (
    select
        l.supplier_code,
        l.invoice_number,
        l.line_number,
        l.kind,
        l.invoice_date,
        cast(l.currency as text) as currency,
        l.description,
        l.signed_amount_incl_tax,
        case
            when l.currency = 'EUR' then l.signed_amount_incl_tax
            else round(l.signed_amount_incl_tax * r.rate_to_eur, 2)
        end as signed_amount_eur,
        a.dossier_number,
        i.received_at,
        {{ dbt.concat(["l.supplier_code", "'/'", "l.invoice_number"]) }} as source_id,
        case when l.kind = 'credit_note' then 'Avoir' else 'Facture' end as piece_kind
    from lines as l
    inner join invoices as i
        on i.supplier_code = l.supplier_code and i.invoice_number = l.invoice_number
    left join attributed as a
        on a.supplier_code = l.supplier_code
        and a.invoice_number = l.invoice_number
        and a.line_number = l.line_number
    left join rates as r
        on r.currency = l.currency and l.invoice_date >= r.valid_from and l.invoice_date < r.valid_to
),

purchase_lines as (
    select
        'AC' as journal_code,
        invoice_date as entry_date,
        '604' as account,
        cast(null as text) as aux_account,
        invoice_number as piece_ref,
        invoice_date as piece_date,
        {{ dbt.concat(["piece_kind", "' '", "invoice_number", "' l.'", "cast(line_number as text)", "' '", "coalesce(description, '')"]) }} as label,
        case when signed_amount_eur > 0 then signed_amount_eur when signed_amount_eur <= 0 then 0 end as debit,
        case when signed_amount_eur < 0 then -signed_amount_eur when signed_amount_eur >= 0 then 0 end as credit,
        abs(signed_amount_incl_tax) as currency_amount,
        currency,
        received_at as validated_at,
        'supplier_invoice' as source_type,
        source_id,
        dossier_number
    from converted
),

-- The supplier line is the sum of the converted lines, so the entry balances to the cent.
supplier_totals as (
    select
        c.supplier_code,
        c.invoice_number,
        c.invoice_date,
        c.currency,
        c.received_at,
        c.source_id,
        c.piece_kind,
        sum(c.signed_amount_eur) as signed_amount_eur,
        sum(c.signed_amount_incl_tax) as signed_amount_incl_tax,
        -- The entry names a dossier only when every line belongs to the same one.
        case
            when count(c.dossier_number) = count(*) and min(c.dossier_number) = max(c.dossier_number)
                then min(c.dossier_number)
        end as dossier_number
    from converted as c
    group by c.supplier_code, c.invoice_number, c.invoice_date, c.currency, c.received_at, c.source_id, c.piece_kind
),

supplier_lines as (
    select
        'AC' as journal_code,
        t.invoice_date as entry_date,
        '401' as account,
        -- An invoice from a supplier missing from the reference still posts, on an account
        -- named after its code, rather than being left out of the books.
        coalesce(s.ledger_account, {{ dbt.concat(["'401'", "t.supplier_code"]) }}) as aux_account,
        t.invoice_number as piece_ref,
        t.invoice_date as piece_date,
        {{ dbt.concat(["t.piece_kind", "' '", "t.invoice_number", "' '", "coalesce(s.supplier_name, t.supplier_code)"]) }} as label,
        case when t.signed_amount_eur < 0 then -t.signed_amount_eur when t.signed_amount_eur >= 0 then 0 end as debit,
        case when t.signed_amount_eur > 0 then t.signed_amount_eur when t.signed_amount_eur <= 0 then 0 end as credit,
        abs(t.signed_amount_incl_tax) as currency_amount,
        t.currency,
        t.received_at as validated_at,
        'supplier_invoice' as source_type,
        t.source_id,
        t.dossier_number
    from supplier_totals as t
    left join suppliers as s on s.supplier_code = t.supplier_code
),

all_lines as (
    select * from purchase_lines
    union all
    select * from supplier_lines
)

select
    journal_code,
    entry_date,
    account,
    aux_account,
    piece_ref,
    piece_date,
    label,
    cast(debit as numeric(14, 2)) as debit,
    cast(credit as numeric(14, 2)) as credit,
    cast(currency_amount as numeric(14, 2)) as currency_amount,
    currency,
    validated_at,
    source_type,
    source_id,
    dossier_number
from all_lines
-- A zero line says nothing and the FEC has no use for it.
-- A line without an exchange rate (null amounts) stays, for the not_null checks to stop the build.
where debit <> 0 or credit <> 0 or debit is null or credit is null
{% endmacro %}
