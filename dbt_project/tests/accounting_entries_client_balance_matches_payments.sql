-- Per dossier and currency, what the bank journal put on the client's 411 account (credits less
-- debits, in the payment's currency) equals the net money-moving payments. Returns the
-- dossiers where they differ. A daily build reads the dossiers whose payments may have changed
-- (the change log's, mart_changed_dossiers) and those of the bank lines numbered after the last
-- checked (macros/entries_checked.sql), each by its dossier; the lines up to there are proved
-- unchanged by accounting_entries_checked_unchanged.
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{%- set checked = entries_checked() %}
{%- set changed = none if checked is none else mart_changed_dossiers() %}
{%- set journal = ref('accounting_entries') %}
{%- if changed is none %}
with posted as (
    select
        dossier_number,
        currency,
        sum(case when credit > 0 then currency_amount else -currency_amount end) as posted_amount
    from {{ journal }}
    where journal_code = 'BQ' and account = '411'
    group by dossier_number, currency
),

paid as (
    select p.dossier_number, cast(p.currency as text) as currency, sum(p.amount) as paid_amount
    from {{ ref('stg_app__payments') }} as p
    inner join {{ ref('int_client__accounts') }} as d on d.dossier_number = p.dossier_number
    where p.moves_money
    group by p.dossier_number, p.currency
),
{%- else %}
with scope as (
    select unnest({{ text_array(changed) }}) as dossier_number
    union
    select dossier_number from ({{ entries_since_checked(checked) }}) as since
    where journal_code = 'BQ' and account = '411' and dossier_number is not null
),

posted as (
    select s.dossier_number, a.currency, a.posted_amount
    from scope as s
    cross join lateral (
        select currency, sum(case when credit > 0 then currency_amount else -currency_amount end) as posted_amount
        from {{ journal }}
        where dossier_number = s.dossier_number and journal_code = 'BQ' and account = '411'
        group by currency
        offset 0
    ) as a
),

paid as (
    select s.dossier_number, p.currency, p.paid_amount
    from scope as s
    cross join lateral (
        select cast(p.currency as text) as currency, sum(p.amount) as paid_amount
        from {{ ref('stg_app__payments') }} as p
        where p.dossier_number = s.dossier_number and p.moves_money
            and exists (select 1 from {{ ref('int_client__accounts') }} as d where d.dossier_number = s.dossier_number)
        group by p.currency
        offset 0
    ) as p
),
{%- endif %}

differ as (
    select
        coalesce(a.dossier_number, b.dossier_number) as dossier_number,
        coalesce(a.currency, b.currency) as currency,
        a.posted_amount,
        b.paid_amount
    from posted as a
    full outer join paid as b on b.dossier_number = a.dossier_number and b.currency = a.currency
)

select * from differ
where coalesce(posted_amount, 0) <> coalesce(paid_amount, 0)
