import pytest
from django.contrib.auth.models import Permission, User


@pytest.fixture
def staff_user(db):
    def make(*perms: str, username: str = "clerk") -> User:
        user = User.objects.create_user(username=username, password="pw-for-tests", is_staff=True)
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return User.objects.get(pk=user.pk)  # fresh permission cache

    return make
