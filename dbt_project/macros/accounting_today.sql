{# Today in the accounting timezone: the accountant's day, as backoffice.domain.clock.accounting_today()
   in the app. PostgreSQL's current_date is the session's timezone's day (UTC on most servers),
   a day behind Paris between 23:00 and midnight UTC. #}
{% macro accounting_today() -%}
    cast(now() at time zone '{{ var("accounting_timezone") }}' as date)
{%- endmacro %}
