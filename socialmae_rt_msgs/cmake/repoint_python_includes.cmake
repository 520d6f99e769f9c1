# The ROS 2 message wheels on PyPI name the Python and numpy headers of the machine that built
# them (/opt/python/cp311-cp311/include/python3.11, .../numpy/_core/include) in their imported
# targets. At the end of the configure step, every such folder that does not exist here is
# pointed at this Python's; a ROS install from packages has none and is left as it is.
# Include it from a CMakeLists.txt, or pass -DCMAKE_PROJECT_INCLUDE=<this file>.
include_guard(GLOBAL)

function(socialmae_rt_repoint_python_includes)
  get_directory_property(_imported_targets DIRECTORY "${CMAKE_SOURCE_DIR}" IMPORTED_TARGETS)
  foreach(_target IN LISTS _imported_targets)
    get_target_property(_dirs ${_target} INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_repointed "")
    set(_changed FALSE)
    foreach(_dir IN LISTS _dirs)
      if(_dir MATCHES "/numpy/" AND NOT EXISTS "${_dir}")
        list(APPEND _repointed ${Python3_NumPy_INCLUDE_DIRS})
        set(_changed TRUE)
      elseif(_dir MATCHES "include/python3" AND NOT EXISTS "${_dir}")
        list(APPEND _repointed ${Python3_INCLUDE_DIRS})
        set(_changed TRUE)
      else()
        list(APPEND _repointed "${_dir}")
      endif()
    endforeach()
    if(_changed)
      set_target_properties(${_target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_repointed}")
    endif()
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL socialmae_rt_repoint_python_includes)
