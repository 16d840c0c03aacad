# Service operations (issue 5): the metrics library, install layout and the Debian package.
# Included by the top-level CMakeLists.txt after the libraries are defined.

# Prometheus text exposition without hand-formatting (prometheus-cpp core only: no HTTP exposer,
# the daemon serves /metrics itself).
find_package(prometheus-cpp CONFIG REQUIRED)
target_link_libraries(vipportd_agent PUBLIC prometheus-cpp::core)

# ---- install layout ----------------------------------------------------------------------------
# cmake --install BUILD --prefix /usr (what scripts/package does) gives:
#   /usr/sbin/vipportd, /usr/lib/systemd/system/vipportd.service,
#   /usr/lib/sysusers.d/vipportd.conf, /usr/lib/tmpfiles.d/vipportd.conf,
#   /usr/share/doc/vipportd/{README.md,vipportd.toml.example,examples/vipportd-netns.conf}, and /etc/vipportd/vipportd.toml
#   only when no such file exists (an operator's configuration is never overwritten).
include(GNUInstallDirs)
# `install` and CPack must not build "all" first (the tests): scripts/package and the .deb test
# build the vipportd target themselves.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
# Relative destinations land under the install prefix, which CPack's DEB generator sets to /usr.
set(VIPPORTD_UNITDIR lib/systemd/system)
# The unit and the documentation name /etc/vipportd whatever the prefix.
set(VIPPORTD_CONFDIR /etc/vipportd CACHE PATH "Where vipportd.toml goes")
install(TARGETS vipportd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/vipportd.service ${PROJECT_SOURCE_DIR}/systemd/vipportd.socket
    DESTINATION ${VIPPORTD_UNITDIR})
install(FILES ${PROJECT_SOURCE_DIR}/systemd/vipportd.sysusers
    DESTINATION lib/sysusers.d RENAME vipportd.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/vipportd.tmpfiles
    DESTINATION lib/tmpfiles.d RENAME vipportd.conf)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# The opt-in drop-in for VIPs in other network namespaces (README "Network namespaces").
install(FILES ${PROJECT_SOURCE_DIR}/systemd/vipportd-netns.conf
    DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/vipportd.toml
    DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME vipportd.toml.example)
set(VIPPORTD_CONFIG_FILE "${VIPPORTD_CONFDIR}/vipportd.toml")
# file(INSTALL) prepends DESTDIR itself; the existence check must add it by hand.
install(CODE "
    set(dest \"\$ENV{DESTDIR}${VIPPORTD_CONFIG_FILE}\")
    if(EXISTS \"\${dest}\")
        message(STATUS \"Keeping existing: \${dest}\")
    else()
        file(INSTALL \"${PROJECT_SOURCE_DIR}/systemd/vipportd.toml\"
             DESTINATION \"${VIPPORTD_CONFDIR}\"
             FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
    endif()
")

# ---- Debian package (scripts/package) ----------------------------------------------------------
set(CPACK_GENERATOR DEB)
# Stage with DESTDIR so that the absolute /etc destination lands in the package, not on the host.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_NAME vipportd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "vipportd maintainers <vipportd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "VIP used-ports agent for ZStack virtual routers (sockets and netfilter rules)")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Runtime dependencies are the shared libraries' Debian packages, found by dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS OFF)
configure_file(${PROJECT_SOURCE_DIR}/systemd/debian/postinst
    ${CMAKE_BINARY_DIR}/debian/postinst @ONLY)
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "${VIPPORTD_CONFIG_FILE}\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian/postinst ${CMAKE_BINARY_DIR}/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
