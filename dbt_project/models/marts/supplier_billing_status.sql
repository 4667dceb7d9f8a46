{#- Billing status per (dossier, supplier): what the Devis says we owe against what the supplier
    invoiced and we matched (outputs.md). A view over views and the matching table, so an
    accountant's decision or an agent's regulation shows at once.

    A difference an accountant wrote off (app.write_offs, net of undos) is settled: the status
    rules of outputs.md apply to the expected amount plus the written-off amount, so a row whose
    whole difference was written off is `invoiced`; expected_amount and difference keep their
    meaning, written_off_amount and remaining_difference say what was written off and what is
    left. -#}
{#- Each input is read once, as one list of amounts per (dossier, supplier), so a reader's filter on
    one dossier reaches the tables' dossier indexes (docs/dbt.md, "Views read for one dossier"). -#}

-- Each rate holds from its date to the next one; the first one also covers anything older, so
-- an early invoice is converted rather than left out of the sum.
with rates as (
    select
        currency::text as currency,
        case when row_number() over (partition by currency order by rate_date) = 1
            then date '1900-01-01' else rate_date end as valid_from,
        coalesce(lead(rate_date) over (partition by currency order by rate_date), date '9999-12-31') as valid_to,
        rate_to_eur
    from {{ ref('exchange_rates') }}
),

-- What the Devis expects, what was invoiced and counted (a suggestion waits for an accountant),
-- and what an accountant wrote off (net of undos: an undo is a row of the opposite sign).
items as (
    select
        dossier_number, supplier_code, 'expected' as kind, currency::text as currency,
        expected_amount as amount, cast(null as date) as invoice_date
    from {{ ref('int_expected__by_dossier_supplier') }}
    union all
    select
        dossier_number, supplier_code, 'invoiced', currency::text, signed_amount_incl_tax, invoice_date
    from {{ ref('int_invoice_lines__matched') }}
    where is_counted and dossier_number is not null
    union all
    select dossier_number, supplier_code, 'written_off', currency::text, amount, null
    from {{ ref('stg_app__write_offs') }}
),

-- The row's currency is that of the expected lines; if a supplier's lines of one dossier came in
-- several currencies, the supplier's own currency; with nothing expected, the invoice's.
in_row_currency as (
    select
        i.*,
        coalesce(
            case
                when min(i.currency) filter (where i.kind = 'expected') over w
                    = max(i.currency) filter (where i.kind = 'expected') over w
                    then min(i.currency) filter (where i.kind = 'expected') over w
            end,
            s.currency::text,
            min(i.currency) filter (where i.kind = 'invoiced') over w
        ) as row_currency
    from items as i
    left join {{ ref('stg_app__suppliers') }} as s on s.supplier_code = i.supplier_code
    window w as (partition by i.dossier_number, i.supplier_code)
),

-- An amount in another currency than the row's (rare: a supplier changing currency) is converted:
-- an invoice at the rate of its date, the Devis and write-offs at today's. Only those look a rate
-- up (a range join against every rate for every amount costs seconds).
with_rates as (
    select
        x.*,
        case when x.currency <> x.row_currency then (
            select r.rate_to_eur from rates as r
            where r.currency = x.currency
                and coalesce(x.invoice_date, {{ accounting_today() }}) >= r.valid_from
                and coalesce(x.invoice_date, {{ accounting_today() }}) < r.valid_to
        ) end as from_rate,
        case when x.currency <> x.row_currency then (
            select r.rate_to_eur from rates as r
            where r.currency = x.row_currency
                and coalesce(x.invoice_date, {{ accounting_today() }}) >= r.valid_from
                and coalesce(x.invoice_date, {{ accounting_today() }}) < r.valid_to
        ) end as to_rate
    from in_row_currency as x
),

converted as (
    select
        dossier_number,
        supplier_code,
        row_currency,
        kind,
        currency,
        invoice_date,
        case when currency = row_currency then amount else round(amount * from_rate / to_rate, 2) end as amount,
        case when currency <> row_currency and kind = 'invoiced' then from_rate / to_rate end as exchange_rate
    from with_rates
),

amounts as (
    select
        dossier_number,
        supplier_code,
        row_currency as currency,
        coalesce(sum(amount) filter (where kind = 'expected'), 0) as e,
        coalesce(sum(amount) filter (where kind = 'invoiced'), 0) as i,
        coalesce(sum(amount) filter (where kind = 'written_off'), 0) as w,
        cast({{ var('billing_tolerance') }} as numeric(14, 2)) as t,
        max(invoice_date) filter (where kind = 'invoiced') as last_invoice_date,
        string_agg(distinct case when exchange_rate is not null then currency end, ',') as converted_from_currency,
        -- the rate of the latest converted line, to show how the row was converted
        (array_agg(exchange_rate order by invoice_date desc) filter (where exchange_rate is not null))[1]
            as exchange_rate,
        count(*) filter (where kind = 'invoiced') as matched_lines
    from converted
    group by dossier_number, supplier_code, row_currency
)

select
    dossier_number::text as dossier_number,
    supplier_code::text as supplier_code,
    currency::text as currency,
    e::numeric(14, 2) as expected_amount,
    i::numeric(14, 2) as invoiced_amount,
    (i - e)::numeric(14, 2) as difference,
    t::numeric(14, 2) as tolerance,
    -- outputs.md, in this order: the rules overlap only at I = 0, where not_invoiced wins. A
    -- written-off difference counts as settled: E is taken as E + W.
    (case
        when i = 0 and e + w <> 0 then 'not_invoiced'
        when abs(i - e - w) <= t then 'invoiced'
        when i > e + w + t then 'over_invoiced'
        else 'partially_invoiced'
    end)::text as status,
    last_invoice_date::date as last_invoice_date,
    converted_from_currency::text as converted_from_currency,
    exchange_rate::numeric(18, 8) as exchange_rate,
    matched_lines::integer as matched_lines,
    w::numeric(14, 2) as written_off_amount,
    (i - e - w)::numeric(14, 2) as remaining_difference
from amounts
-- Something expected or something invoiced (outputs.md).
where e <> 0 or matched_lines > 0
