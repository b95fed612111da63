import django_filters
from django.db.models import Q

from delivery.models import ParcelMachine


class ParcelMachineFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="search", label="Name, city, address or Omniva ZIP contains (case-insensitive)"
    )

    class Meta:
        model = ParcelMachine
        fields = []

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value)
            | Q(city__icontains=value)
            | Q(address__icontains=value)
            | Q(zip__icontains=value)
        )
