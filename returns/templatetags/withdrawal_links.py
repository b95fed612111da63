"""`{% withdraw_url order %}`: the signed link to an order's withdrawal button (R18), for
the order, dispatch and delivery emails."""

from django import template

from returns.withdrawals import links

register = template.Library()


@register.simple_tag
def withdraw_url(order) -> str:
    return links.withdraw_url(order)
